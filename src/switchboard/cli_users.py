"""`switchboard users ...` and `switchboard tokens ...`: console accounts and machine tokens."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

users_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Console users (roles: admin, supervisor, viewer).")
tokens_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="API tokens for machines, each with scopes (dialer read pii write control export "
                              "delete admin).")
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def _with_accounts(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    from switchboard.app import load_settings_for_cli
    from switchboard.panel.auth_accounts import AccountError, AccountService
    from switchboard.store import open_store
    from switchboard.store.accounts import AccountsRepo

    settings = load_settings_for_cli()

    async def run() -> T:
        store = await open_store(settings)
        try:
            return await work(AccountService(AccountsRepo(store.sessions, store.dialect), settings), settings)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except AccountError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("password (10+ characters)", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        err_console.print("[red]the two passwords differ[/red]")
        raise typer.Exit(1)
    return str(first)


@users_app.command("create")
def create(username: str = typer.Argument(..., help="sign-in name"),
           role: str = typer.Option("admin", "--role", help="admin | supervisor | viewer"),
           password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
           link: bool = typer.Option(False, "--link", help="no password now: print a one-time login link instead"),
           ) -> None:
    """Create a console user (the first admin, say) with a password, or with a one-time login link."""
    from switchboard.web.serve import public_url

    password = None if link else _read_password(password_stdin)

    async def work(accounts: Any, settings: Any) -> str | None:
        user = await accounts.create_user(username, role, password)
        await accounts.audit("cli", "user.create", target=user.username, details={"role": role})
        return f"{public_url(settings)}{await accounts.issue_login_link(username)}" if link else None

    url = _with_accounts(work)
    console.print(f"created {escape(username)} ({role})", highlight=False)
    if url:
        console.print(f"one-time login link: {url}", highlight=False, soft_wrap=True)


@users_app.command("link")
def login_link(username: str = typer.Argument(...)) -> None:
    """Print a one-time login link for a user (a lost password: they set a new one after)."""
    from switchboard.web.serve import public_url

    async def work(accounts: Any, settings: Any) -> str:
        path = await accounts.issue_login_link(username)
        await accounts.audit("cli", "user.link", target=username)
        return f"{public_url(settings)}{path}"

    console.print(f"one-time login link: {_with_accounts(work)}", highlight=False, soft_wrap=True)


@users_app.command("list")
def list_users() -> None:
    """Console users and their roles."""

    async def work(accounts: Any, settings: Any) -> list[Any]:
        return await accounts.repo.users(company=settings.company)

    table = Table("user", "role", "active", "password", "last sign-in")
    for u in _with_accounts(work):
        table.add_row(u.username, u.role, "yes" if u.active else "no", "set" if u.password_hash else "-",
                      f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "-")
    console.print(table)


@tokens_app.command("create")
def create_token(name: str = typer.Argument(..., help="what the token is for, e.g. crm-sync"),
                 scope: list[str] = typer.Option(..., "--scope", help="repeat: dialer read pii write control "
                                                                        "export delete admin")) -> None:
    """Create an API token; it is printed once and stored only as a digest."""

    async def work(accounts: Any, settings: Any) -> Any:
        issued = await accounts.create_token(name, scope, created_by="cli")
        await accounts.audit("cli", "token.create", target=name, details={"scopes": issued.row.scopes})
        return issued

    issued = _with_accounts(work)
    console.print(f"token {escape(name)} ({', '.join(issued.row.scopes)}), shown once:", highlight=False)
    sys.stdout.write(issued.token + "\n")


@tokens_app.command("list")
def list_tokens() -> None:
    async def work(accounts: Any, settings: Any) -> list[Any]:
        return await accounts.repo.tokens(company=settings.company)

    table = Table("id", "name", "scopes", "prefix", "last used", "revoked")
    for t in _with_accounts(work):
        table.add_row(str(t.id), t.name, " ".join(t.scopes), t.prefix,
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-", "yes" if t.revoked_at else "")
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(name: str = typer.Argument(...)) -> None:
    async def work(accounts: Any, settings: Any) -> bool:
        for t in await accounts.repo.tokens(company=settings.company):
            if t.name == name:
                await accounts.repo.revoke_token(t.id, company=settings.company)
                await accounts.audit("cli", "token.revoke", target=name)
                return True
        return False

    if not _with_accounts(work):
        err_console.print(f"[red]no token named {escape(name)}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {escape(name)}", highlight=False)

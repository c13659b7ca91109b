"""Accounts: password hashing, sessions, one-time login links, API tokens, the login throttle, the
first-start bootstrap and the audit log, over `store.accounts`.

Nothing here knows HTTP; `panel.auth` turns requests into `Principal`s with these services.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from switchboard import clock
from switchboard.settings import Settings
from switchboard.store.accounts import AccountsRepo, ApiToken, SessionRow, User

log = logging.getLogger(__name__)

ROLES = ("admin", "supervisor", "viewer")
# What each scope allows (API tokens carry any subset; roles map onto fixed sets):
#   dialer  the dialer contract (/api/dialer/*) and nothing else
#   read    pages and read-only API routes; phone numbers masked unless `pii` too
#   pii     full phone numbers and recordings
#   write   create and change contacts, campaigns, strategies, feedback, imports
#   control pause / resume dialing, scenario switches and reloads, call_allowed
#   export  CSV / XLSX exports
#   delete  deletions (DNC removals, deactivating lines and operators)
#   admin   users, API tokens, settings, scenario and persona files, the audit log
SCOPES = ("dialer", "read", "pii", "write", "control", "export", "delete", "admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "supervisor": frozenset({"read", "pii", "write", "control", "export"}),
    "admin": frozenset(SCOPES),
}
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "sbt"


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_scopes(scopes: list[str] | tuple[str, ...] | set[str] | str) -> list[str]:
    items = Settings.split_list(scopes) if isinstance(scopes, str) else [s.strip() for s in scopes if s.strip()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise AccountError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not items:
        raise AccountError("a token needs at least one scope")
    return [s for s in SCOPES if s in items]


def effective_scopes(scopes: list[str] | frozenset[str]) -> frozenset[str]:
    """Every scope but `dialer` implies `read`: a token that may pause may also see the state."""
    out = set(scopes)
    if out - {"dialer"}:
        out.add("read")
    return frozenset(out)


class LoginThrottle:
    """Failed logins per username and per client address in a sliding window; past the limit the
    key is refused until its oldest failure leaves the window. In process memory: a restart forgets
    (an attacker gains one window per restart, not a bypass)."""

    def __init__(self, max_failures: int, window: float, *, per_ip_factor: int = 4) -> None:
        self.max_failures = max(1, max_failures)
        self.window = window
        self.per_ip = self.max_failures * per_ip_factor
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, username: str, ip: str) -> float:
        """Seconds until a login for this user from this address may be tried; 0 = now."""
        now = time.monotonic()
        waits = []
        for key, limit in ((f"u:{username.lower()}", self.max_failures), (f"ip:{ip}", self.per_ip)):
            q = self._recent(key, now)
            if len(q) >= limit:
                waits.append(q[len(q) - limit] + self.window - now)
        return max(waits, default=0.0)

    def failed(self, username: str, ip: str) -> None:
        now = time.monotonic()
        for key in (f"u:{username.lower()}", f"ip:{ip}"):
            self._recent(key, now).append(now)
        if len(self._failures) > 50_000:  # bounded memory under a spray of usernames
            for key in [k for k, q in self._failures.items() if not q][:25_000]:
                del self._failures[key]

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username.lower()}", None)


@dataclass(frozen=True, slots=True)
class NewSession:
    cookie: str  # the secret the browser keeps
    csrf: str
    max_age: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    row: ApiToken


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What a first start created: the admin's name and a one-time login path to print."""

    username: str
    login_path: str


@dataclass
class AccountService:
    repo: AccountsRepo
    settings: Settings
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    throttle: LoginThrottle | None = None
    _dummy_hash: str | None = None

    def __post_init__(self) -> None:
        if self.throttle is None:
            self.throttle = LoginThrottle(self.settings.login_max_failures, float(self.settings.login_window_seconds))

    @property
    def company(self) -> str:
        return self.settings.company

    # --- passwords ------------------------------------------------------------------------------
    async def hash_password(self, password: str) -> str:
        check_password(password)
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, stored: str | None, password: str) -> bool:
        if stored is None:
            # Same work as a real check, so response time does not tell which usernames exist.
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(16))
            stored, password = self._dummy_hash, password + "\x00"
        try:
            return await asyncio.to_thread(self.hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # --- users ----------------------------------------------------------------------------------
    async def create_user(self, username: str, role: str, password: str | None) -> User:
        if not USERNAME.match(username):
            raise AccountError("a username is 1-100 letters, digits or . _ @ -")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if await self.repo.user(username, company=self.company) is not None:
            raise AccountError(f"user {username!r} exists")
        hashed = await self.hash_password(password) if password is not None else None
        return await self.repo.add_user(username, role, company=self.company, password_hash=hashed)

    async def set_password(self, user_id: int, password: str, *, keep_session: str | None = None) -> None:
        await self.repo.update_user(user_id, password_hash=await self.hash_password(password))
        await self.repo.delete_sessions_of(user_id, keep=keep_session)  # other devices are signed out

    async def authenticate(self, username: str, password: str, ip: str) -> User:
        """The user for these credentials; raises `LoginRefused` (bad credentials) or
        `LoginThrottled` (too many failures) with a message fit to show."""
        assert self.throttle is not None
        wait = self.throttle.retry_after(username, ip)
        if wait > 0:
            raise LoginThrottled(wait)
        user = await self.repo.user(username, company=self.company) if USERNAME.match(username) else None
        ok = await self._verify(user.password_hash if user is not None else None, password)
        if user is None or not ok or not user.active:
            self.throttle.failed(username, ip)
            raise LoginRefused("wrong username or password")
        self.throttle.succeeded(username)
        if self.hasher.check_needs_rehash(user.password_hash or ""):
            await self.repo.update_user(user.id, password_hash=await asyncio.to_thread(self.hasher.hash, password))
        return user

    # --- sessions -------------------------------------------------------------------------------
    def _lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.session_idle_minutes)

    async def start_session(self, user: User, *, ip: str | None, user_agent: str | None) -> NewSession:
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        lifetime = min(self._lifetime(), timedelta(hours=self.settings.session_hours))
        await self.repo.add_session(digest(cookie), user.id, csrf, expires_at=clock.now() + lifetime,
                                    ip=ip, user_agent=user_agent)
        return NewSession(cookie, csrf, int(self.settings.session_hours * 3600))

    async def session(self, cookie: str) -> SessionRow | None:
        """The session behind a cookie, sliding its idle expiry (written at most once a minute);
        None when unknown, expired or older than SESSION_HOURS."""
        if not cookie or len(cookie) > 200:
            return None
        row = await self.repo.session(digest(cookie))
        if row is None:
            return None
        now = clock.now()
        if row.expires_at < now or row.company != self.company:
            await self.repo.delete_session(row.id)
            return None
        if now - row.last_seen_at > timedelta(minutes=1):
            absolute = row.created_at + timedelta(hours=self.settings.session_hours)
            await self.repo.touch_session(row.id, expires_at=min(now + self._lifetime(), absolute))
        return row

    async def end_session(self, cookie: str) -> None:
        if cookie:
            await self.repo.delete_session(digest(cookie))

    # --- one-time login links -------------------------------------------------------------------
    async def issue_login_link(self, username: str) -> str:
        """A path (`/login/once/<token>`) that signs the user in once within LOGIN_LINK_HOURS;
        issuing a new one voids the user's older unused links."""
        user = await self.repo.user(username, company=self.company)
        if user is None:
            raise AccountError(f"no user {username!r}")
        token = secrets.token_urlsafe(32)
        await self.repo.add_login_link(digest(token), user.id,
                                       expires_at=clock.now() + timedelta(hours=self.settings.login_link_hours))
        return f"/login/once/{token}"

    async def peek_login_link(self, token: str) -> User | None:
        return await self.repo.peek_login_link(digest(token)) if 20 <= len(token) <= 100 else None

    async def use_login_link(self, token: str) -> User | None:
        if not 20 <= len(token) <= 100:
            return None
        user_id = await self.repo.use_login_link(digest(token))
        user = await self.repo.user_by_id(user_id) if user_id is not None else None
        return user if user is not None and user.active else None

    async def bootstrap(self) -> Bootstrap | None:
        """First start with nothing configured: create the `admin` user (no password yet) and a
        one-time login link. Also re-issued on later starts while no admin has set a password (the
        first link was lost), so a fresh install is never open and never locked out."""
        users = await self.repo.users(company=self.company)
        if not users:
            await self.repo.add_user("admin", "admin", company=self.company, password_hash=None)
            log.warning("no console users: created 'admin'; sign in with the one-time link printed at start-up")
            return Bootstrap("admin", await self.issue_login_link("admin"))
        admins = [u for u in users if u.role == "admin" and u.active]
        if admins and all(u.password_hash is None for u in admins):
            return Bootstrap(admins[0].username, await self.issue_login_link(admins[0].username))
        return None

    # --- API tokens -----------------------------------------------------------------------------
    async def create_token(self, name: str, scopes: list[str] | str, *, created_by: str | None) -> IssuedToken:
        if not USERNAME.match(name):
            raise AccountError("a token name is 1-100 letters, digits or . _ @ -")
        clean = normalise_scopes(scopes)
        if any(t.name == name for t in await self.repo.tokens(company=self.company)):
            raise AccountError(f"a token named {name!r} exists")
        prefix = f"{TOKEN_PREFIX}_{secrets.token_hex(6)}"
        token = f"{prefix}_{secrets.token_urlsafe(32)}"
        row = await self.repo.add_token(company=self.company, name=name, prefix=prefix, secret_hash=digest(token),
                                        scopes=clean, created_by=created_by)
        return IssuedToken(token, row)

    async def check_token(self, token: str) -> ApiToken | None:
        """The live token row for a presented bearer token (constant-time digest comparison)."""
        parts = token.split("_")
        if len(parts) < 3 or parts[0] != TOKEN_PREFIX or len(token) > 200:
            return None
        row = await self.repo.token_by_prefix(f"{parts[0]}_{parts[1]}")
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(digest(token), row.secret_hash):
            return None
        if row.last_used_at is None or clock.now() - row.last_used_at > timedelta(minutes=5):
            await self.repo.token_used(row.id)
        return row

    # --- audit ----------------------------------------------------------------------------------
    async def audit(self, actor: str, action: str, *, role: str | None = None, target: str | None = None,
                    details: dict[str, Any] | None = None, ip: str | None = None,
                    status: int | None = None) -> None:
        try:
            await self.repo.audit(company=self.company, actor=actor, action=action, role=role, target=target,
                                  details=details, ip=ip, status=status)
        except Exception:  # the audit must never turn a done action into an error page
            log.exception("audit entry %s by %s not written", action, actor)


class LoginRefused(Exception):
    pass


class LoginThrottled(Exception):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed sign-ins; try again in {max(1, round(self.retry_after / 60))} min")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("a password is at most 1024 characters")


__all__ = ["ROLES", "ROLE_SCOPES", "SCOPES", "AccountError", "AccountService", "Bootstrap", "IssuedToken",
           "LoginRefused", "LoginThrottle", "LoginThrottled", "NewSession", "check_password", "digest",
           "effective_scopes", "normalise_scopes"]

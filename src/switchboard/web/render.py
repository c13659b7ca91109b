"""Jinja2 templates and the filters every page shares (masked numbers, local times, durations)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse

from switchboard.dialer.lines import parse_timezone
from switchboard.observability.logging import mask_phone
from switchboard.panel.auth import Principal

HERE = Path(__file__).resolve().parent
FLASH_COOKIE = "sb_flash"
FLASH_ERROR_COOKIE = "sb_flash_err"


def phone_for(principal: Principal | None, number: str | None) -> str:
    """A phone number as this user may see it: masked for roles without `pii`."""
    if not number:
        return ""
    if principal is None or principal.masked:
        return mask_phone(number)
    return number


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def build_templates(panel_timezone: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.autoescape = True
    tz = parse_timezone(panel_timezone)

    def local(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return value.astimezone(tz).strftime(fmt)

    def between(start: datetime | None, end: datetime | None) -> str:
        if start is None or end is None:
            return ""
        return duration((end - start).total_seconds())

    def pct(value: float | None, digits: int = 0) -> str:
        return "" if value is None else f"{value * 100:.{digits}f}%"

    def result_class(result: str | None) -> str:
        if not result:
            return "r-none"
        if result.startswith("failed:"):
            return "r-failed"
        return "r-" + result.replace("_", "-")

    env.filters.update(local=local, duration=duration, between=between, pct=pct, result_class=result_class)
    env.globals.update(phone_for=phone_for, timedelta=timedelta, Markup=Markup)
    return templates


def render(templates: Jinja2Templates, request: Request, name: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    context.setdefault("principal", principal)
    context.setdefault("csrf", principal.csrf if principal is not None else "")
    context.setdefault("path", request.url.path)
    context.setdefault("flash", unquote(request.cookies.get(FLASH_COOKIE, ""))[:500])
    context.setdefault("error", unquote(request.cookies.get(FLASH_ERROR_COOKIE, ""))[:2000])
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    for cookie in (FLASH_COOKIE, FLASH_ERROR_COOKIE):
        if cookie in request.cookies:
            response.delete_cookie(cookie, path="/")
    return response


def redirect(url: str, *, flash: str = "", error: str = "") -> RedirectResponse:
    """A 303 to `url` carrying a one-shot message for the next page (a cookie, so no page can be
    made to show attacker-chosen text through its URL)."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash[:500]), max_age=60, path="/", httponly=True, samesite="lax")
    if error:
        response.set_cookie(FLASH_ERROR_COOKIE, quote(error[:2000]), max_age=60, path="/", httponly=True,
                            samesite="lax")
    return response


__all__ = ["build_templates", "duration", "phone_for", "redirect", "render"]

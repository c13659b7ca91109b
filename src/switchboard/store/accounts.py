"""The console's accounts: users, their server-side sessions, one-time login links, API tokens for
machines and the audit log of what people and tokens changed.

Secrets never reach this table in the clear: passwords are argon2 hashes, session ids, login links
and API tokens are stored as SHA-256 digests of high-entropy random strings (a stolen database
hands out no working session or token).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import Base, BigId, _now


class User(Base):
    __tablename__ = "console_users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    username: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)  # None: login link only
    role: Mapped[str] = mapped_column(String(20))  # admin | supervisor | viewer
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("company", "username", name="uq_console_users_name"),)


class UserSession(Base):
    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column(default=_now)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)


class LoginLink(Base):
    __tablename__ = "console_login_links"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the link's token
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)  # the public part, to look it up
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole token
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (UniqueConstraint("company", "name", name="uq_api_tokens_name"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    company: Mapped[str] = mapped_column(String(100), default="default")
    at: Mapped[datetime] = mapped_column(default=_now)
    actor: Mapped[str] = mapped_column(String(200))  # user:alice | token:crm-sync | cli
    role: Mapped[str | None] = mapped_column(String(20), default=None)
    action: Mapped[str] = mapped_column(String(100))  # dialer.pause | POST /api/v1/dnc | ...
    target: Mapped[str | None] = mapped_column(String(300), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    __table_args__ = (Index("ix_audit_company_at", "company", "at"),)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A live session joined with its user (what every authenticated request needs)."""

    id: str
    csrf: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    user_id: int
    username: str
    role: str
    company: str
    has_password: bool


class AccountsRepo(Repository):
    # --- users ----------------------------------------------------------------------------------
    async def add_user(self, username: str, role: str, *, company: str, password_hash: str | None) -> User:
        async with self.sessions.begin() as s:
            row = User(company=company, username=username, role=role, password_hash=password_hash,
                       created_at=utcnow())
            s.add(row)
        return row

    async def user(self, username: str, *, company: str) -> User | None:
        async with self.sessions() as s:
            return await s.scalar(select(User).where(User.company == company, User.username == username))

    async def user_by_id(self, user_id: int) -> User | None:
        async with self.sessions() as s:
            return await s.get(User, user_id)

    async def users(self, *, company: str) -> list[User]:
        async with self.sessions() as s:
            return list((await s.scalars(select(User).where(User.company == company).order_by(User.id))).all())

    async def count_users(self, *, company: str) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(User).where(User.company == company)) or 0)

    async def update_user(self, user_id: int, **fields: Any) -> User | None:
        async with self.sessions.begin() as s:
            row = await s.get(User, user_id)
            if row is None:
                return None
            for key, value in fields.items():
                setattr(row, key, value)
            return row

    # --- sessions -------------------------------------------------------------------------------
    async def add_session(self, session_id: str, user_id: int, csrf: str, *, expires_at: datetime,
                          ip: str | None, user_agent: str | None) -> None:
        now = utcnow()
        async with self.sessions.begin() as s:
            s.add(UserSession(id=session_id, user_id=user_id, csrf=csrf, created_at=now, last_seen_at=now,
                              expires_at=expires_at, ip=(ip or "")[:64] or None,
                              user_agent=(user_agent or "")[:300] or None))
            user = await s.get(User, user_id)
            if user is not None:
                user.last_login_at = now

    async def session(self, session_id: str) -> SessionRow | None:
        stmt = (select(UserSession, User).join(User, User.id == UserSession.user_id)
                .where(UserSession.id == session_id, User.active))
        async with self.sessions() as s:
            found = (await s.execute(stmt)).first()
        if found is None:
            return None
        sess, user = found
        return SessionRow(sess.id, sess.csrf, sess.created_at, sess.expires_at, sess.last_seen_at, user.id, user.username, user.role,
                          user.company, user.password_hash is not None)

    async def touch_session(self, session_id: str, *, expires_at: datetime) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(UserSession, session_id)
            if row is not None:
                row.last_seen_at = utcnow()
                row.expires_at = expires_at

    async def delete_session(self, session_id: str) -> None:
        async with self.sessions.begin() as s:
            await s.execute(delete(UserSession).where(UserSession.id == session_id))

    async def delete_sessions_of(self, user_id: int, *, keep: str | None = None) -> None:
        stmt = delete(UserSession).where(UserSession.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(UserSession.id != keep)
        async with self.sessions.begin() as s:
            await s.execute(stmt)

    async def purge_expired(self) -> None:
        now = utcnow()
        async with self.sessions.begin() as s:
            await s.execute(delete(UserSession).where(UserSession.expires_at < now))
            await s.execute(delete(LoginLink).where(LoginLink.expires_at < now))

    # --- one-time login links -------------------------------------------------------------------
    async def add_login_link(self, link_id: str, user_id: int, *, expires_at: datetime) -> None:
        async with self.sessions.begin() as s:
            await s.execute(delete(LoginLink).where(LoginLink.user_id == user_id, LoginLink.used_at.is_(None)))
            s.add(LoginLink(id=link_id, user_id=user_id, created_at=utcnow(), expires_at=expires_at))

    async def use_login_link(self, link_id: str) -> int | None:
        """Mark the link used and return its user; None when unknown, used or expired. Atomic: two
        requests racing with the same link get one session between them."""
        now = utcnow()
        async with self.sessions.begin() as s:
            row = await s.get(LoginLink, link_id, with_for_update=self.is_postgres)
            if row is None or row.used_at is not None or row.expires_at < now:
                return None
            row.used_at = now
            return row.user_id

    async def peek_login_link(self, link_id: str) -> User | None:
        now = utcnow()
        async with self.sessions() as s:
            row = await s.get(LoginLink, link_id)
            if row is None or row.used_at is not None or row.expires_at < now:
                return None
            return await s.get(User, row.user_id)

    # --- API tokens -----------------------------------------------------------------------------
    async def add_token(self, *, company: str, name: str, prefix: str, secret_hash: str, scopes: list[str],
                        created_by: str | None) -> ApiToken:
        async with self.sessions.begin() as s:
            row = ApiToken(company=company, name=name, prefix=prefix, secret_hash=secret_hash, scopes=scopes,
                           created_by=created_by, created_at=utcnow())
            s.add(row)
        return row

    async def token_by_prefix(self, prefix: str) -> ApiToken | None:
        async with self.sessions() as s:
            return await s.scalar(select(ApiToken).where(ApiToken.prefix == prefix))

    async def tokens(self, *, company: str) -> list[ApiToken]:
        async with self.sessions() as s:
            stmt = select(ApiToken).where(ApiToken.company == company).order_by(ApiToken.id)
            return list((await s.scalars(stmt)).all())

    async def revoke_token(self, token_id: int, *, company: str) -> ApiToken | None:
        async with self.sessions.begin() as s:
            row = await s.get(ApiToken, token_id)
            if row is None or row.company != company:
                return None
            row.revoked_at = row.revoked_at or utcnow()
            return row

    async def token_used(self, token_id: int) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(ApiToken, token_id)
            if row is not None:
                row.last_used_at = utcnow()

    # --- audit log ------------------------------------------------------------------------------
    async def audit(self, *, company: str, actor: str, action: str, role: str | None = None,
                    target: str | None = None, details: dict[str, Any] | None = None, ip: str | None = None,
                    status: int | None = None) -> None:
        async with self.sessions.begin() as s:
            s.add(AuditEntry(company=company, at=utcnow(), actor=actor[:200], role=role, action=action[:100],
                             target=(target or "")[:300] or None, details=details or {},
                             ip=(ip or "")[:64] or None, status=status))

    async def audit_log(self, *, company: str, actor: str | None = None, action: str | None = None,
                        offset: int = 0, limit: int = 100) -> Page:
        conds = [AuditEntry.company == company]
        if actor:
            conds.append(AuditEntry.actor == actor)
        if action:
            conds.append(AuditEntry.action.startswith(action))
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(AuditEntry).where(*conds))
            rows = await s.scalars(select(AuditEntry).where(*conds).order_by(AuditEntry.id.desc())
                                   .offset(offset).limit(limit))
            return Page(list(rows.all()), int(total or 0), offset, limit)

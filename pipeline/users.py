"""Desk users: a name, a role, an Argon2id password hash (argon2-cffi), and who may do what.

Roles: `agent` works the desk (claim, reply, resolve, dismiss, note, reassign) and sees every page;
`marketing` sees the queue, trends and alerts but changes nothing; `admin` may do everything,
including changing rules, erasing a person's data and managing users. `can(role, action)` is the
one place that says so; the dashboard and the CLI ask it before acting.

Passwords are never stored or logged: only the hash, which embeds its salt and cost parameters, so
`authenticate` rehashes transparently when argon2-cffi's defaults grow. Signing in through OIDC
(Streamlit's st.login) needs no password: `add_user(..., password=None)` makes such a user.
Every change is written to the audit log.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from .store import Store, metadata, utcnow

ROLES = ("agent", "marketing", "admin")
DESK_ACTIONS = ("claim", "reply", "resolve", "dismiss", "note", "reassign")
VIEWS = ("view_queue", "view_trends", "view_alerts")
ADMIN_ACTIONS = ("change_rules", "erase", "manage_users")
ACTIONS = (*DESK_ACTIONS, *VIEWS, *ADMIN_ACTIONS)
PERMISSIONS = {
    "agent": frozenset((*DESK_ACTIONS, *VIEWS)),
    "marketing": frozenset(VIEWS),
    "admin": frozenset(ACTIONS),
}

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.Text),                 # None: signs in through OIDC only
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user cannot be added or changed (unknown role, name taken, empty password)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: datetime
    disabled: bool = False

    def can(self, action: str) -> bool:
        return not self.disabled and can(self.role, action)


def create_tables(conn: Connection) -> None:
    """Migration 0006_users."""
    metadata.create_all(conn, tables=[users])


def can(role: str, action: str) -> bool:
    """Whether `role` may do `action` (one of ACTIONS); an unknown action is a programming error."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    return action in PERMISSIONS.get(role, frozenset())


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to `address` answers only on this computer (127.0.0.0/8, ::1, localhost).
    None or "" is every interface, as Streamlit binds by default."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:          # a host name: it may resolve to anything
        return False


def add_user(store: Store, name: str, role: str, password: str | None, actor: str = "cli") -> User:
    """Create a user; `password` None makes an OIDC-only user (no password sign-in)."""
    name = name.strip()
    if not name:
        raise UserError("a user needs a name")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if password is not None and not password.strip():
        raise UserError("the password is empty")
    now = utcnow()
    digest = _hasher.hash(password) if password is not None else None
    with store.engine.begin() as c:
        if c.scalar(sa.select(users.c.name).where(users.c.name == name)) is not None:
            raise UserError(f"user {name!r} already exists")
        c.execute(users.insert().values(name=name, role=role, password_hash=digest, created_at=now, disabled=False))
        store._audit(c, actor, "user_add", detail={"user": name, "role": role})
    return User(name, role, now)


def get_user(store: Store, name: str) -> User | None:
    with store.engine.connect() as c:
        row = c.execute(sa.select(users).where(users.c.name == name.strip())).first()
    return None if row is None else _user(row)


def list_users(store: Store) -> list[User]:
    with store.engine.connect() as c:
        return [_user(row) for row in c.execute(sa.select(users).order_by(users.c.name))]


def has_users(store: Store) -> bool:
    """False on a new store: the dashboard then runs without sign-in (a single-user setup)."""
    with store.engine.connect() as c:
        return c.scalar(sa.select(users.c.name).limit(1)) is not None


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user when the name and password match and the user is enabled; else None. Audited either way."""
    with store.engine.connect() as c:
        row = c.execute(sa.select(users).where(users.c.name == name.strip())).first()
    digest = row.password_hash if row is not None else None
    ok = _verify(digest or _DUMMY_HASH, password) and digest is not None
    user = _user(row) if ok and not row.disabled else None
    with store.engine.begin() as c:
        store._audit(c, name.strip() or "?", "sign_in" if user else "sign_in_failed",
                     detail=None if user else {"reason": _why_refused(row, ok)})
        if user and _hasher.check_needs_rehash(digest):
            c.execute(users.update().where(users.c.name == user.name).values(password_hash=_hasher.hash(password)))
    return user


def disable_user(store: Store, name: str, actor: str = "cli") -> None:
    _update(store, name, actor, "user_disable", disabled=True)


def enable_user(store: Store, name: str, actor: str = "cli") -> None:
    _update(store, name, actor, "user_enable", disabled=False)


def set_role(store: Store, name: str, role: str, actor: str = "cli") -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    _update(store, name, actor, "user_role", role=role)


def set_password(store: Store, name: str, password: str, actor: str = "cli") -> None:
    if not password.strip():
        raise UserError("the password is empty")
    _update(store, name, actor, "user_password", password_hash=_hasher.hash(password))


def _update(store: Store, name: str, actor: str, action: str, **values) -> None:
    with store.engine.begin() as c:
        if c.execute(users.update().where(users.c.name == name).values(**values)).rowcount != 1:
            raise UserError(f"no user {name!r}; `ecoute users list` shows them")
        shown = {k: v for k, v in values.items() if k != "password_hash"}
        store._audit(c, actor, action, detail={"user": name, **shown})


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def _why_refused(row, password_ok: bool) -> str:
    if row is None:
        return "unknown user"
    if row.password_hash is None:
        return "no password (OIDC sign-in only)"
    return "disabled" if password_ok else "wrong password"


def _user(row) -> User:
    return User(name=row.name, role=row.role, created_at=row.created_at, disabled=bool(row.disabled))

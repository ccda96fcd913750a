"""Desk users: a name, a role, an Argon2id password hash (argon2-cffi), and who may do what.

Roles: `agent` works the desk (claim, reply, resolve, dismiss, note, reassign) and sees every page;
`marketing` sees the queue, trends and alerts but changes nothing; `admin` may do everything,
including changing rules, erasing a person's data and managing users. `can(role, action)` is the
one place that says so; the dashboard and the CLI ask it before acting.

Passwords are never stored or logged: only the hash, which embeds its salt and cost parameters, so
`authenticate` rehashes transparently when argon2-cffi's defaults grow. Signing in through OIDC
(Streamlit's st.login) needs no password: `add_user(..., password=None)` makes such a user.
Every change is written to the audit log.

Sign-in is throttled against guessing (OWASP's advice, NIST SP 800-63B's minimum of 12 characters
for passwords): failures are counted per user name and per client (the connection's IP address, or
the browser session) in the `sign_in_failures` table, so every dashboard process sees the same
counts. After FREE_FAILURES failures each try must wait 1 s, then 2, 4… capped at MAX_DELAY; a try
made while waiting is refused unchecked and not counted, so an attacker cannot lengthen the wait,
and counts are forgotten FORGET_AFTER the last failure. A successful sign-in clears its name's and
client's counts. The name's count does not hold where the user signed in successfully within
KNOWN_CLIENT_FOR, so guessing at a name elsewhere never locks its user out of her usual place. A password change moves the user's `generation`: sessions that signed in under the
old one are signed out (identity() in ui/common.py).
"""
from __future__ import annotations

import ipaddress
import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from pipeline.store import Store, audit_log, metadata, utcnow

ROLES = ("agent", "marketing", "admin")
DESK_ACTIONS = ("claim", "reply", "resolve", "dismiss", "note", "reassign")
VIEWS = ("view_queue", "view_trends", "view_alerts")
ADMIN_ACTIONS = ("change_rules", "erase", "manage_users")
AVAILABILITIES = ("available", "away", "signed_out")   # automatic assignment gives cases to 'available' only
MIN_PASSWORD_LENGTH = 12                 # NIST SP 800-63B's minimum for a password chosen by its user
MAX_NAME_LENGTH = 120                    # users.name and audit_log.actor are VARCHAR(120)
FREE_FAILURES = 5                        # failed sign-ins before each try must wait
MAX_DELAY = timedelta(minutes=5)         # the longest wait: a real user can always try again within it
FORGET_AFTER = timedelta(minutes=30)     # failures this old no longer count
KNOWN_CLIENT_FOR = timedelta(days=90)    # a name's wait does not apply where its user signed in this recently
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
    # moved by each password change: a session signed in under an older one is signed out
    sa.Column("generation", sa.Integer, nullable=False, default=0, server_default="0"),
    # at the desk or not (0011): 'available', 'away' or 'signed_out'; automatic assignment takes available agents
    sa.Column("availability", sa.String(20), nullable=False, default="signed_out", server_default="signed_out"),
    sa.Column("availability_at", sa.DateTime),
)

sign_in_failures = sa.Table(
    "sign_in_failures", metadata,
    sa.Column("scope", sa.String(10), primary_key=True),       # 'user' or 'client'
    sa.Column("subject", sa.String(200), primary_key=True),    # the user name, or the client's address/session
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failed_at", sa.DateTime, nullable=False, index=True),
)

_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user cannot be added or changed (unknown role, name taken, password too short)."""


class SignInThrottled(Exception):
    """Too many failed sign-ins for this name or from this client: try again in `seconds`."""

    def __init__(self, seconds: int):
        super().__init__(f"too many failed sign-ins: try again in {seconds} s")
        self.seconds = seconds


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: datetime
    disabled: bool = False
    generation: int = 0
    availability: str = "signed_out"

    def can(self, action: str) -> bool:
        return not self.disabled and can(self.role, action)


def create_tables(conn: Connection) -> None:
    """Migration 0006_users."""
    metadata.create_all(conn, tables=[users])


def add_availability(conn: Connection) -> None:
    """Migration 0011_desk_automation: users.availability (a store made before it lacks the columns)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("users")}
    if "availability" not in have:
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN availability VARCHAR(20) NOT NULL DEFAULT 'signed_out'"))
    if "availability_at" not in have:
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN availability_at TIMESTAMP"))


def create_throttle_tables(conn: Connection) -> None:
    """Migration 0009_sign_in_throttle: failed sign-in counts, and users.generation (a store made by
    0006 before this column existed lacks it)."""
    if "generation" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}:
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0"))
    metadata.create_all(conn, tables=[sign_in_failures])


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
    problem = name_problem(name)
    if problem:
        raise UserError(problem)
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if password is not None:
        check_password(password)
    now = utcnow()
    digest = _hasher.hash(password) if password is not None else None
    with store.engine.begin() as c:
        if c.scalar(sa.select(users.c.name).where(users.c.name == name)) is not None:
            raise UserError(f"user {name!r} already exists")
        c.execute(users.insert().values(name=name, role=role, password_hash=digest, created_at=now, disabled=False))
        store._audit(c, actor, "user_add", detail={"user": name, "role": role})
    return User(name, role, now)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user name, or None. Invisible formatting characters (an RTL override)
    would let one name pass for another in the audit log."""
    if not name:
        return "a user needs a name"
    if len(name) > MAX_NAME_LENGTH:
        return f"a user name has at most {MAX_NAME_LENGTH} characters; this one has {len(name)}"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        return "a user name cannot hold control or invisible formatting characters"
    return None


def check_password(password: str) -> None:
    """Refuse an empty password or one shorter than MIN_PASSWORD_LENGTH characters."""
    if not password.strip():
        raise UserError("the password is empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters; this one has "
                        f"{len(password)} (a few words make a good one)")


def get_user(store: Store, name: str) -> User | None:
    if name_problem(name.strip()):          # could not be stored, so is nobody (and PostgreSQL refuses NUL)
        return None
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


def authenticate(store: Store, name: str, password: str, client: str | None = None) -> User | None:
    """The user when the name and password match and the user is enabled; else None. Audited either way
    (with `client`, never the password). Raises SignInThrottled, checking nothing, while this name or
    `client` (an IP address or a session id) must still wait after failed sign-ins."""
    name = name.strip()
    valid = name_problem(name) is None
    actor = name if valid else "?"             # an odd name is nobody; it never reaches a VARCHAR(120)
    now = utcnow()
    with store.engine.connect() as c:
        keys = ([("user", name)] if valid and not _known_client(c, name, client, now) else []) + \
            ([("client", client[:200])] if client else [])
        wait = _wait_seconds(c, keys, now)
        row = c.execute(sa.select(users).where(users.c.name == name)).first() if valid and not wait else None
    if wait:
        _sign_in_failed(store, actor, "throttled", client, keys, now, count=False)
        raise SignInThrottled(wait)
    digest = row.password_hash if row is not None else None
    ok = _verify(digest or _DUMMY_HASH, password) and digest is not None
    user = _user(row) if ok and not row.disabled else None
    if user is None:
        reason = _why_refused(row, ok) if valid else "invalid user name"
        _sign_in_failed(store, actor, reason, client, keys, now)
        return None
    with store.engine.begin() as c:
        store._audit(c, user.name, "sign_in", detail={"client": client} if client else None)
        c.execute(sign_in_failures.delete().where(_any_of(keys)))
        if _hasher.check_needs_rehash(digest):
            c.execute(users.update().where(users.c.name == user.name).values(password_hash=_hasher.hash(password)))
    return user


def delay_after(failures: int) -> timedelta:
    """How long the next try waits after `failures` failed sign-ins: none, then 1 s doubling to MAX_DELAY."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE_FAILURES, 20)), MAX_DELAY)


def _known_client(c: Connection, name: str, client: str | None, now: datetime) -> bool:
    """Whether `name` signed in successfully from `client` within KNOWN_CLIENT_FOR. Guesses at a name
    elsewhere do not make its user wait there: an attacker failing once every MAX_DELAY would
    otherwise keep the user out for ever (OWASP's "device cookie" idea, with the client's address)."""
    if not client:
        return False
    detail = json.dumps({"client": client}, ensure_ascii=False)   # how authenticate audits a sign-in
    query = sa.select(audit_log.c.id).where(audit_log.c.actor == name, audit_log.c.action == "sign_in",
                                            audit_log.c.at > now - KNOWN_CLIENT_FOR, audit_log.c.detail == detail)
    return c.scalar(query.limit(1)) is not None


def _wait_seconds(c: Connection, keys: list[tuple[str, str]], now: datetime) -> int:
    if not keys:
        return 0
    rows = c.execute(sa.select(sign_in_failures.c.failures, sign_in_failures.c.last_failed_at)
                     .where(_any_of(keys), sign_in_failures.c.last_failed_at > now - FORGET_AFTER)).all()
    wait = max((row.last_failed_at + delay_after(row.failures) - now for row in rows), default=timedelta(0))
    return max(0, math.ceil(wait.total_seconds()))


def _sign_in_failed(store: Store, actor: str, reason: str, client: str | None, keys, now: datetime,
                    count: bool = True) -> None:
    with store.engine.begin() as c:
        store._audit(c, actor, "sign_in_failed", detail={"reason": reason, **({"client": client} if client else {})})
        if count:
            c.execute(sign_in_failures.delete().where(sign_in_failures.c.last_failed_at <= now - FORGET_AFTER))
            for scope, subject in keys:
                _count_failure(c, scope, subject, now)


def _count_failure(c: Connection, scope: str, subject: str, now: datetime) -> None:
    match = (sign_in_failures.c.scope == scope) & (sign_in_failures.c.subject == subject)
    bumped = sign_in_failures.update().where(match).values(failures=sign_in_failures.c.failures + 1,
                                                            last_failed_at=now)
    if c.execute(bumped).rowcount:
        return
    try:
        with c.begin_nested():             # another process may insert the same row at the same moment
            c.execute(sign_in_failures.insert().values(scope=scope, subject=subject, failures=1, last_failed_at=now))
    except sa.exc.IntegrityError:
        c.execute(bumped)


def _any_of(keys: list[tuple[str, str]]):
    return sa.or_(sa.false(), *((sign_in_failures.c.scope == scope) & (sign_in_failures.c.subject == subject)
                                for scope, subject in keys))


def disable_user(store: Store, name: str, actor: str = "cli") -> None:
    _update(store, name, actor, "user_disable", disabled=True)


def enable_user(store: Store, name: str, actor: str = "cli") -> None:
    _update(store, name, actor, "user_enable", disabled=False)


def set_role(store: Store, name: str, role: str, actor: str = "cli") -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    _update(store, name, actor, "user_role", role=role)


def set_password(store: Store, name: str, password: str, actor: str = "cli") -> None:
    """A new password; the user's sessions signed in before it are signed out (their generation moves)."""
    check_password(password)
    _update(store, name, actor, "user_password", password_hash=_hasher.hash(password),
            generation=users.c.generation + 1)


def _update(store: Store, name: str, actor: str, action: str, **values) -> None:
    if name_problem(name):
        raise UserError(f"no user {name[:MAX_NAME_LENGTH]!r}; `ecoute users list` shows them")
    with store.engine.begin() as c:
        if c.execute(users.update().where(users.c.name == name).values(**values)).rowcount != 1:
            raise UserError(f"no user {name!r}; `ecoute users list` shows them")
        shown = {k: v for k, v in values.items() if k not in ("password_hash", "generation", "availability_at")}
        store._audit(c, actor, action, detail={"user": name, **shown})


def set_availability(store: Store, name: str, availability: str, actor: str | None = None) -> None:
    """Whether `name` is at the desk: 'available' (automatic assignment may give her cases), 'away' or
    'signed_out' (it never does). The dashboard sets it at sign-in and sign-out; audited."""
    if availability not in AVAILABILITIES:
        raise UserError(f"availability must be one of {', '.join(AVAILABILITIES)}, got {availability!r}")
    _update(store, name, actor or name, "user_availability", availability=availability, availability_at=utcnow())


def availability_of(store: Store, name: str) -> str | None:
    """'available', 'away' or 'signed_out'; None for an unknown user."""
    user = get_user(store, name)
    return None if user is None else user.availability


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
    return User(name=row.name, role=row.role, created_at=row.created_at, disabled=bool(row.disabled),
                generation=int(row.generation or 0), availability=row.availability or "signed_out")

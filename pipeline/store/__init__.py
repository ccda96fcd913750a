"""All of Écoute's SQL, in SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

Tables: mentions, classifications, queue_items, cursors, audit_log (and schema_migrations, alembic_version:
migrations are Alembic revisions in pipeline/store/migrations, each calling a named step below).
Writes are idempotent upserts keyed by the mention's identity (source:source_id); each call is one
transaction, so a crash loses at most the batch in flight, never what was committed before.

Over 800 lines: the mentions, the queue (cases) and the cursors share one transaction per unit of
work (`save_page`, `save_labels`), so they stay in one class; families that do not (alerts, users,
personal-data removal, trend counts) live in their own modules. Splitting the queue out is next.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.mention import DISMISS_REASONS, Labels, Mention

if TYPE_CHECKING:
    from pipeline.rules import Queue
    from pipeline.desk.sla import Calendar

DEFAULT_DB = "ecoute.db"
OPEN_STATUSES = ("new", "claimed", "replied")     # a case still needs the desk
STATUSES = (*OPEN_STATUSES, "resolved", "dismissed")

metadata = sa.MetaData()

mentions = sa.Table(
    "mentions", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("author", sa.String(255)),
    sa.Column("author_followers", sa.BigInteger),
    sa.Column("author_created_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, index=True),
    sa.Column("title", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("lang", sa.String(12)),
    sa.Column("parent_id", sa.String(255)),
    sa.Column("thread_id", sa.String(255)),
    sa.Column("raw", sa.Text),
    sa.Column("fetched_at", sa.DateTime, nullable=False),
    sa.Column("deleted_at", sa.DateTime),
    sa.UniqueConstraint("source", "source_id", name="uq_mentions_source_id"),
)

classifications = sa.Table(
    "classifications", metadata,
    sa.Column("mention_key", sa.String(300), sa.ForeignKey("mentions.key"), primary_key=True),
    sa.Column("model", sa.String(120), nullable=False),
    sa.Column("lang", sa.String(12)),
    sa.Column("relevant", sa.Boolean, nullable=False),
    sa.Column("brands", sa.Text, nullable=False),          # JSON list
    sa.Column("competitors", sa.Text, nullable=False),     # JSON list
    sa.Column("sentiment", sa.String(12), nullable=False),
    sa.Column("sentiment_score", sa.Float, nullable=False),
    sa.Column("complaint", sa.Boolean, nullable=False),
    sa.Column("complaint_score", sa.Float, nullable=False),
    sa.Column("intent", sa.String(20), nullable=False),
    sa.Column("category", sa.String(40)),                  # complaints only
    sa.Column("severity", sa.String(40)),                  # complaints only
    sa.Column("needs_response", sa.Boolean, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, index=True),
    sa.Column("transparency", sa.Text, nullable=False),    # JSON list
    sa.Column("reasons", sa.Text, nullable=False),         # JSON list
    sa.Column("error", sa.Text),
    sa.Column("classified_at", sa.DateTime, nullable=False),
    sa.Column("emotion", sa.String(20)),                   # None: the heads had no emotion task (0010)
    sa.Column("emotion_score", sa.Float),
    sa.Column("irony_score", sa.Float),                    # None: the heads had no irony task
)

queue_items = sa.Table(
    "queue_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("mention_key", sa.String(300), sa.ForeignKey("mentions.key"), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("assignee", sa.String(120)),
    sa.Column("due_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("claimed_at", sa.DateTime),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # a queue item is a case: every mention of one author in one thread (0005_cases)
    sa.Column("case_key", sa.String(400), index=True),
    sa.Column("band", sa.String(40)),
    sa.Column("first_response_at", sa.DateTime),
    sa.Column("resolve_due_at", sa.DateTime),
    sa.Column("snoozed_until", sa.DateTime),
    sa.Column("dismiss_reason", sa.String(40)),
    sa.Column("reply_id", sa.String(200)),
    sa.Column("reply_url", sa.Text),
    sa.Column("last_error", sa.Text),
    # teams, automations (0011_desk_automation)
    sa.Column("team", sa.String(120), index=True),          # the team whose case it is (rules.yaml teams)
    sa.Column("tags", sa.Text),                             # JSON list, added by automations
    sa.Column("template", sa.String(120)),                  # a reply template an automation suggests
)

# the queue's order: the top new case is the first entry of this index (claim_next, the first page)
sa.Index("ix_queue_items_pick", queue_items.c.status, queue_items.c.priority.desc(), queue_items.c.due_at)

case_mentions = sa.Table(
    "case_mentions", metadata,
    sa.Column("mention_key", sa.String(300), sa.ForeignKey("mentions.key"), primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False, index=True),
    sa.Column("added_at", sa.DateTime, nullable=False),
)

case_events = sa.Table(
    "case_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),   # opened, mention, reopened, claim, reply, …
    sa.Column("mention_key", sa.String(300)),
    sa.Column("text", sa.Text),                         # a note or a reply as sent
    sa.Column("detail", sa.Text),                       # JSON
)

# Which automation has fired on which case: each fires once per case (0011_desk_automation).
case_automations = sa.Table(
    "case_automations", metadata,
    sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_items.id"), primary_key=True),
    sa.Column("automation", sa.String(120), primary_key=True),
    sa.Column("fired_at", sa.DateTime, nullable=False),
    sa.Column("mention_key", sa.String(300)),            # the mention it fired on
)

# A case's notifications (an automation's `notify`, SLA escalation): one row per case, reason and target,
# so each is sent once; failed ones are retried like alert deliveries (0011_desk_automation).
case_notifications = sa.Table(
    "case_notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),    # automation | due_soon | breached
    sa.Column("name", sa.String(120), nullable=False),   # the automation's name, or the stage
    sa.Column("target", sa.String(320), nullable=False), # a webhook's name or an e-mail address
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("case_id", "kind", "name", "target", name="uq_case_notifications"),
)

# Handles an agent linked as one person (source:author → the person's key, itself a handle): the customer's
# history spans them, and erasure follows the link (0011_desk_automation).
person_links = sa.Table(
    "person_links", metadata,
    sa.Column("handle", sa.String(300), primary_key=True),
    sa.Column("person", sa.String(300), nullable=False, index=True),
    sa.Column("linked_by", sa.String(120), nullable=False),
    sa.Column("linked_at", sa.DateTime, nullable=False),
)

cursors = sa.Table(
    "cursors", metadata,
    sa.Column("source_name", sa.String(120), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=False),          # JSON
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("mention_key", sa.String(300)),
    sa.Column("queue_item_id", sa.Integer),
    sa.Column("detail", sa.Text),                          # JSON
)

source_health = sa.Table(
    "source_health", metadata,
    sa.Column("source_name", sa.String(120), primary_key=True),
    sa.Column("last_success_at", sa.DateTime),
    sa.Column("last_error_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("items_fetched", sa.BigInteger, nullable=False, default=0),
    sa.Column("last_items", sa.Integer, nullable=False, default=0),
    sa.Column("backoff_until", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# A deletion is permanent: a later copy of the same source:id (fetched again, ingested again) stays
# deleted or purged. Keys only, no text (0008_tombstones).
tombstones = sa.Table(
    "tombstones", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),     # deleted | purged | erased
)

schema_migrations = sa.Table(
    "schema_migrations", metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)


def _initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[mentions, classifications, queue_items, cursors, audit_log])


def _source_health(conn: Connection) -> None:
    metadata.create_all(conn, tables=[source_health])


def _category_severity(conn: Connection) -> None:
    """Complaint category and severity on classifications (a fresh database has them already)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("classifications")}
    for column in ("category", "severity"):
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE classifications ADD COLUMN {column} VARCHAR(40)"))


CASE_COLUMNS = {"case_key": "VARCHAR(400)", "band": "VARCHAR(40)", "first_response_at": "TIMESTAMP",
                "resolve_due_at": "TIMESTAMP", "snoozed_until": "TIMESTAMP", "dismiss_reason": "VARCHAR(40)",
                "reply_id": "VARCHAR(200)", "reply_url": "TEXT", "last_error": "TEXT"}


def _cases(conn: Connection) -> None:
    """Queue items become cases: grouped mentions, a timeline, SLA and reply fields."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("queue_items")}
    for column, kind in CASE_COLUMNS.items():
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE queue_items ADD COLUMN {column} {kind}"))
    if "case_key" not in have:
        conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_queue_items_case_key ON queue_items (case_key)"))
    metadata.create_all(conn, tables=[case_mentions, case_events])
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_queue_items_pick ON queue_items (status, priority DESC, due_at)"))
    conn.execute(queue_items.update().where(queue_items.c.case_key.is_(None))
                 .values(case_key=queue_items.c.mention_key))
    linked = sa.select(case_mentions.c.mention_key)
    conn.execute(case_mentions.insert().from_select(
        ["mention_key", "case_id", "added_at"],
        sa.select(queue_items.c.mention_key, queue_items.c.id, queue_items.c.created_at)
        .where(queue_items.c.mention_key.not_in(linked))))


def _alerts(conn: Connection) -> None:
    """Crisis and spike alerts and their webhook deliveries (their SQL: pipeline/store/alerts.py)."""
    from pipeline.store.alerts import create_tables

    create_tables(conn)


def _users(conn: Connection) -> None:
    """Desk users, roles and password hashes (their SQL: pipeline/desk/users.py)."""
    from pipeline.desk.users import create_tables

    create_tables(conn)


def _analytics_indexes(conn: Connection) -> None:
    """Indexes the analyst API's incremental trend counts read by (pipeline/analytics/trend_counts.py)."""
    for name, table, column in (("ix_classifications_classified_at", "classifications", "classified_at"),
                                ("ix_mentions_deleted_at", "mentions", "deleted_at")):
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})"))


def _tombstones(conn: Connection) -> None:
    """Deleted, purged and erased keys, so that a later copy of a post never brings it back."""
    metadata.create_all(conn, tables=[tombstones])
    deleted = sa.select(mentions.c.key, mentions.c.deleted_at, sa.literal("deleted")).where(
        mentions.c.deleted_at.is_not(None), mentions.c.key.not_in(sa.select(tombstones.c.key)))
    conn.execute(tombstones.insert().from_select(["key", "at", "kind"], deleted))


EMOTION_IRONY_COLUMNS = {"emotion": "VARCHAR(20)", "emotion_score": "FLOAT", "irony_score": "FLOAT"}


def _emotion_irony(conn: Connection) -> None:
    """Emotion, its probability and the irony probability on classifications (a fresh database has them)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("classifications")}
    for column, kind in EMOTION_IRONY_COLUMNS.items():
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE classifications ADD COLUMN {column} {kind}"))


DESK_COLUMNS = {"team": "VARCHAR(120)", "tags": "TEXT", "template": "VARCHAR(120)"}


def _desk_automation(conn: Connection) -> None:
    """Teams, tags and suggested templates on cases; automations fired, case notifications, linked handles,
    and users' availability (away, signed out: automatic assignment skips them)."""
    from pipeline.desk.users import add_availability

    have = {c["name"] for c in sa.inspect(conn).get_columns("queue_items")}
    for column, kind in DESK_COLUMNS.items():
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE queue_items ADD COLUMN {column} {kind}"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_queue_items_team ON queue_items (team)"))
    # a customer's history and erasure look mentions up by source and lower-cased author (pipeline/desk/customers.py)
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_mentions_source_author ON mentions (source, lower(author))"))
    metadata.create_all(conn, tables=[case_automations, case_notifications, person_links])
    add_availability(conn)


def _sign_in_throttle(conn: Connection) -> None:
    """Failed sign-in counts and users' session generation (their SQL: pipeline/desk/users.py)."""
    from pipeline.desk.users import create_throttle_tables

    create_throttle_tables(conn)


# The named steps, in the order they run; Alembic revisions 0001–0011 (pipeline/store/migrations) call them.
MIGRATIONS = (("0001_initial", _initial), ("0002_source_health", _source_health),
              ("0003_category_severity", _category_severity), ("0005_cases", _cases), ("0004_alerts", _alerts),
              ("0006_users", _users), ("0007_analytics_indexes", _analytics_indexes),
              ("0008_tombstones", _tombstones), ("0009_sign_in_throttle", _sign_in_throttle),
              ("0010_emotion_irony", _emotion_irony), ("0011_desk_automation", _desk_automation))


def steps() -> dict:
    return dict(MIGRATIONS)


class QueueConflict(Exception):
    """A queue action lost a race or does not apply to the item's current state."""


# what a driver raises for a value it cannot send (a number too large for SQLite, a string the
# encoding refuses) besides SQLAlchemy's own wrapped errors
REFUSALS = (sa.exc.DataError, sa.exc.IntegrityError, OverflowError, ValueError, TypeError)   # never a lock or a timeout: those are retried


class Refused(Exception):
    """The database refused a mention; the message names it and says why, never the SQL or its values."""

    def __init__(self, key: str, reason: str):
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


@dataclass
class Saved:
    """What one save of mentions did: new ones, ones already stored (updated in place), copies of
    deleted ones (kept deleted), and the ones the database refused (`Refused`, each with its reason)."""

    new: int = 0
    updated: int = 0
    deleted: int = 0
    refused: list[Refused] = field(default_factory=list)

    def __iadd__(self, other: "Saved") -> "Saved":
        self.new, self.updated, self.deleted = self.new + other.new, self.updated + other.updated, \
            self.deleted + other.deleted
        self.refused += other.refused
        return self


def database_error(exc: BaseException) -> str:
    """Why the database (or its driver) refused a statement, in one line, without the statement or
    its parameters: they carry post text, and a stored or printed error must not."""
    cause = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    line = (str(cause).strip().splitlines() or [""])[0]
    return f"database refused it ({type(cause).__name__}: {line[:300]})"


def error_line(exc: BaseException) -> str:
    """Any error as one line for a log, a source's health or a screen; database errors without SQL."""
    if isinstance(exc, sa.exc.StatementError):
        return database_error(exc)
    return f"{type(exc).__name__}: {str(exc)[:500]}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None)


def database_url(db: str | None = None) -> str:
    """`--db`, else $ECOUTE_DB, else ./ecoute.db; a plain path means a SQLite file."""
    target = db or os.environ.get("ECOUTE_DB") or DEFAULT_DB
    return target if "://" in target else f"sqlite:///{target}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """The one door to the database; the CLI, dashboard and analytics all go through it."""

    def __init__(self, db: str | None = None):
        self.url = database_url(db)
        # hide_parameters: a failed statement's message must not repeat post text (stored errors, logs)
        self.engine: Engine = sa.create_engine(self.url, future=True, hide_parameters=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def migrate(self) -> None:
        """`alembic upgrade head` on this store (pipeline/store/migrations); a pre-Alembic store is stamped first."""
        from pipeline.store.migrations import upgrade

        upgrade(self.engine)

    def _upsert(self, table: sa.Table, rows: list[dict], keys: list[str], update: bool = True,
                keep: tuple[str, ...] = (), where=None):
        """Insert rows; on a key already stored, update every column but `keys` and `keep`
        (only where `where` holds), or nothing when not `update`."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table).values(rows)
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        changing = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in (*keys, *keep)}
        return stmt.on_conflict_do_update(index_elements=keys, set_=changing, where=where)

    # -- mentions -------------------------------------------------------------------------

    def save_mentions(self, batch: Iterable[Mention], conn: Connection | None = None) -> int:
        """Upsert mentions; returns how many were new. Re-saving a mention updates it in place; a
        deleted one stays deleted. Raises `Refused` when the database refuses one (nothing is saved)."""
        return self.store_mentions(batch, conn).new

    def store_mentions(self, batch: Iterable[Mention], conn: Connection | None = None,
                       strict: bool = True) -> Saved:
        """Upsert mentions and say what happened (`Saved`). A copy of a deleted, purged or erased mention
        is not stored again. When the database refuses a mention, `strict` raises `Refused` (the
        caller's transaction rolls back); otherwise the others are stored and the refused one is
        listed in `Saved.refused` and in the audit log with its key and reason: one bad post never
        blocks a page."""
        saved = Saved()
        rows: list[dict] = []
        for mention in batch:
            try:
                rows.append(_mention_row(mention))
            except (ValueError, TypeError, RecursionError) as exc:
                saved.refused.append(Refused(mention.key, f"raw payload is not storable ({type(exc).__name__})"))
        rows = list({r["key"]: r for r in rows}.values())   # one statement may not upsert a key twice
        with self._tx(conn) as c:
            keys = [r["key"] for r in rows]
            gone = self._tombstoned(c, keys)
            rows = [r for r in rows if r["key"] not in gone]
            saved.deleted = len(keys) - len(rows)
            known = set(self._existing(c, [r["key"] for r in rows]))
            for start in range(0, len(rows), 500):
                chunk = rows[start:start + 500]
                try:
                    with self._savepoint(c):
                        c.execute(self._upsert_mentions(chunk))
                except REFUSALS as exc:
                    if strict and len(chunk) == 1:
                        raise Refused(chunk[0]["key"], database_error(exc)) from None
                    saved.refused += self._one_by_one(c, chunk, strict)
            stored = {r["key"] for r in rows} - {r.key for r in saved.refused}
            saved.new, saved.updated = len(stored - known), len(stored & known)
            for refused in saved.refused:
                self._audit(c, "store", "refused", detail={"key": refused.key[:300], "reason": refused.reason})
        if saved.refused and strict:
            raise saved.refused[0]
        return saved

    def _one_by_one(self, c: Connection, rows: list[dict], strict: bool) -> list[Refused]:
        """After a chunk failed: each row alone, in its own savepoint, to find the one(s) refused."""
        failed = []
        for row in rows:
            try:
                with self._savepoint(c):
                    c.execute(self._upsert_mentions([row]))
            except REFUSALS as exc:
                if strict:
                    raise Refused(row["key"], database_error(exc)) from None
                failed.append(Refused(row["key"], database_error(exc)))
        return failed

    def _savepoint(self, c: Connection):
        """PostgreSQL aborts the whole transaction on an error: retrying needs a savepoint. SQLite
        undoes only the failed statement, and pysqlite's savepoints are unreliable: none there."""
        from contextlib import nullcontext

        return c.begin_nested() if c.dialect.name == "postgresql" else nullcontext()

    def _upsert_mentions(self, rows: list[dict]):
        """Insert, or update in place, but never a mention marked deleted (its text stays gone)."""
        return self._upsert(mentions, rows, ["key"], keep=("deleted_at",), where=mentions.c.deleted_at.is_(None))

    def _existing(self, c: Connection, keys: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(keys), 500):
            known |= set(c.scalars(sa.select(mentions.c.key).where(mentions.c.key.in_(keys[start:start + 500]))))
        return known

    def _tombstoned(self, c: Connection, keys: list[str]) -> set[str]:
        gone: set[str] = set()
        for start in range(0, len(keys), 500):
            gone |= set(c.scalars(sa.select(tombstones.c.key).where(tombstones.c.key.in_(keys[start:start + 500]))))
        return gone

    def bury(self, c: Connection, keys: Iterable[str], kind: str) -> None:
        """Remember keys as deleted, purged or erased: later copies of them are not stored."""
        rows = [{"key": k, "at": utcnow(), "kind": kind} for k in sorted(set(keys))]
        for start in range(0, len(rows), 500):
            c.execute(self._upsert(tombstones, rows[start:start + 500], ["key"]))

    def tombstone_counts(self) -> dict[str, int]:
        """How many keys are remembered as deleted, purged and erased."""
        with self.engine.connect() as c:
            return dict(c.execute(sa.select(tombstones.c.kind, sa.func.count()).group_by(tombstones.c.kind)).all())

    def save_labels(self, labels: Iterable[Labels], sla: "Queue | float", min_priority: int | None = None,
                    conn: Connection | None = None) -> int:
        """Store classifications and put every mention that needs a response into a case.

        `sla` is the rules' `queue:` section (bands, working hours) or a first-response target in
        seconds. Mentions of one author in one thread share a case; a new one reopens a replied,
        resolved or dismissed case. An agent's claim is never reset by a rerun. Returns how many
        mentions were added to cases.
        """
        from pipeline.rules import Queue
        from pipeline.desk.sla import add_working_time

        queue = sla if isinstance(sla, Queue) else Queue(first_response_sla=timedelta(seconds=float(sla)))
        floor = queue.min_priority if min_priority is None else min_priority
        calendar = calendar_of(queue)
        labels = list(labels)
        if not labels:
            return 0
        now = utcnow()
        with self._tx(conn) as c:
            rows = [_labels_row(lab, now) for lab in labels]
            for start in range(0, len(rows), 500):
                c.execute(self._upsert(classifications, rows[start:start + 500], ["mention_key"]))
            wanted = [lab for lab in labels if lab.needs_response and lab.priority >= floor]
            info = self._mention_info(c, [lab.mention_key for lab in wanted])
            linked = self._linked(c, [lab.mention_key for lab in wanted])
            added = 0
            for lab in wanted:
                if lab.mention_key in linked:
                    case_id = linked[lab.mention_key]
                    c.execute(queue_items.update().where(queue_items.c.id == case_id,
                                                         queue_items.c.priority < lab.priority)
                              .values(priority=lab.priority, updated_at=now))
                    continue
                mention = info.get(lab.mention_key, {})
                posted = mention.get("created_at") or now
                band = queue.band(lab.priority)
                due = add_working_time(posted, band.first_response, calendar)
                resolve_due = add_working_time(posted, band.resolution or queue.resolution_sla, calendar)
                key = case_key(lab.mention_key, mention)
                case = c.execute(sa.select(queue_items).where(queue_items.c.case_key == key)
                                 .order_by(queue_items.c.id.desc()).limit(1)).mappings().first()
                if case is None:
                    case_id = c.execute(queue_items.insert().values(
                        mention_key=lab.mention_key, case_key=key, status="new", priority=lab.priority,
                        band=band.name, due_at=due, resolve_due_at=resolve_due, created_at=now,
                        updated_at=now)).inserted_primary_key[0]
                    self._event(c, case_id, "system", "opened", lab.mention_key)
                else:
                    case_id = case["id"]
                    values = {"priority": max(case["priority"], lab.priority), "updated_at": now,
                              "mention_key": lab.mention_key}
                    if case["status"] not in ("new", "claimed"):
                        values.update(status="claimed" if case["assignee"] else "new", due_at=due,
                                      resolve_due_at=resolve_due, first_response_at=None, resolved_at=None,
                                      dismiss_reason=None, snoozed_until=None, band=band.name)
                        self._event(c, case_id, "system", "reopened", lab.mention_key,
                                    detail={"was": case["status"]})
                    c.execute(case_mentions.insert().values(mention_key=lab.mention_key, case_id=case_id,
                                                            added_at=now))
                    c.execute(queue_items.update().where(queue_items.c.id == case_id).values(**values))
                    linked[lab.mention_key] = case_id
                    added += 1
                    continue
                c.execute(case_mentions.insert().values(mention_key=lab.mention_key, case_id=case_id, added_at=now))
                linked[lab.mention_key] = case_id
                added += 1
            return added

    def _mention_info(self, c: Connection, keys: list[str]) -> dict[str, dict]:
        out = {}
        for start in range(0, len(keys), 500):
            query = (sa.select(mentions.c.key, mentions.c.created_at, mentions.c.source, mentions.c.author,
                               mentions.c.thread_id, mentions.c.parent_id)
                     .where(mentions.c.key.in_(keys[start:start + 500])))
            out.update({row.key: dict(row._mapping) for row in c.execute(query)})
        return out

    def _linked(self, c: Connection, keys: list[str]) -> dict[str, int]:
        out = {}
        for start in range(0, len(keys), 500):
            query = sa.select(case_mentions.c.mention_key, case_mentions.c.case_id).where(
                case_mentions.c.mention_key.in_(keys[start:start + 500]))
            out.update({k: v for k, v in c.execute(query)})
        return out

    def _event(self, c: Connection, case_id: int, actor: str, kind: str, mention_key: str | None = None,
               text: str | None = None, detail: dict | None = None, at: datetime | None = None) -> None:
        c.execute(case_events.insert().values(case_id=case_id, at=at or utcnow(), actor=actor, kind=kind,
                                              mention_key=mention_key, text=text,
                                              detail=json.dumps(detail, ensure_ascii=False) if detail else None))

    def _created_at(self, c: Connection, keys: list[str]) -> dict[str, datetime]:
        out = {}
        for start in range(0, len(keys), 500):
            query = sa.select(mentions.c.key, mentions.c.created_at).where(mentions.c.key.in_(keys[start:start + 500]))
            out.update({k: v for k, v in c.execute(query) if v is not None})
        return out

    def count(self, table: str) -> int:
        with self.engine.connect() as c:
            return c.scalar(sa.select(sa.func.count()).select_from(metadata.tables[table]))

    def mention_rows(self) -> pd.DataFrame:
        """Every stored mention with its classification (one row each)."""
        query = (sa.select(mentions, *[c for c in classifications.c if c.name != "mention_key"])
                 .select_from(mentions.outerjoin(classifications, classifications.c.mention_key == mentions.c.key))
                 .order_by(mentions.c.created_at))
        with self.engine.connect() as c:
            frame = pd.read_sql(query, c)
        for column in ("brands", "competitors", "transparency", "reasons"):
            frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else [])
        return frame

    def mentions_between(self, start: datetime, end: datetime, exclude: set[str] = frozenset(),
                         limit: int = 5000) -> list[dict]:
        """Live mentions posted between two times, as plain dicts (key, text, author, …), newest first."""
        query = (sa.select(mentions.c.key, mentions.c.text, mentions.c.title, mentions.c.url, mentions.c.author,
                           mentions.c.author_followers, mentions.c.author_created_at, mentions.c.created_at)
                 .where(mentions.c.created_at >= _naive(start), mentions.c.created_at <= _naive(end),
                        mentions.c.deleted_at.is_(None))
                 .order_by(mentions.c.created_at.desc()).limit(limit + len(exclude)))
        with self.engine.connect() as c:
            rows = [dict(row._mapping) for row in c.execute(query)]
        return [row for row in rows if row["key"] not in exclude][:limit]

    def unclassified(self, limit: int = 10_000) -> list[Mention]:
        query = (sa.select(mentions).outerjoin(classifications, classifications.c.mention_key == mentions.c.key)
                 .where(classifications.c.mention_key.is_(None), mentions.c.deleted_at.is_(None)).limit(limit))
        with self.engine.connect() as c:
            return [_row_mention(row._mapping) for row in c.execute(query)]

    # -- queue ----------------------------------------------------------------------------

    def queue(self, statuses: tuple[str, ...] = OPEN_STATUSES, brand: str | None = None,
              limit: int = 500, *, source: str | None = None, lang: str | None = None,
              intent: str | None = None, category: str | None = None, assignee: str | None = None,
              include_snoozed: bool = False, now: datetime | None = None, team: str | None = None) -> pd.DataFrame:
        """Open cases, highest priority first, then the one due soonest; each with its latest mention
        (`mention_key` follows the newest mention of the case).

        Filters match the dashboard's: brand, source, language, intent, category, assignee
        ('' for unassigned), team ('' for cases of no team). Snoozed cases stay out until their time comes.
        """
        now = now or utcnow()
        count = (sa.select(sa.func.count()).where(case_mentions.c.case_id == queue_items.c.id)
                 .correlate(queue_items).scalar_subquery())
        query = (sa.select(queue_items.c.id, queue_items.c.status, queue_items.c.priority,
                           queue_items.c.assignee, queue_items.c.due_at, queue_items.c.resolve_due_at,
                           queue_items.c.claimed_at, queue_items.c.first_response_at, queue_items.c.band,
                           queue_items.c.snoozed_until, queue_items.c.last_error, queue_items.c.case_key,
                           queue_items.c.team, count.label("mentions"), mentions.c.key, mentions.c.source, mentions.c.url, mentions.c.author,
                           mentions.c.author_followers, mentions.c.created_at, mentions.c.title, mentions.c.text,
                           classifications.c.lang, classifications.c.brands, classifications.c.sentiment,
                           classifications.c.intent, classifications.c.category, classifications.c.severity,
                           classifications.c.complaint_score, classifications.c.transparency,
                           classifications.c.reasons)
                 .select_from(queue_items.join(mentions, mentions.c.key == queue_items.c.mention_key)
                              .join(classifications, classifications.c.mention_key == mentions.c.key))
                 .where(queue_items.c.status.in_(statuses), mentions.c.deleted_at.is_(None))
                 .order_by(queue_items.c.priority.desc(), queue_items.c.due_at.asc(), queue_items.c.id.asc())
                 .limit(limit))
        if not include_snoozed:
            query = query.where(sa.or_(queue_items.c.snoozed_until.is_(None), queue_items.c.snoozed_until <= now))
        if brand:
            query = query.where(classifications.c.brands.contains(json.dumps(brand, ensure_ascii=False),
                                                                  autoescape=True))
        for column, value in ((mentions.c.source, source), (classifications.c.lang, lang),
                              (classifications.c.intent, intent), (classifications.c.category, category)):
            if value:
                query = query.where(column == value)
        if assignee is not None:
            query = query.where(queue_items.c.assignee.is_(None) if assignee == "" else
                                queue_items.c.assignee == assignee)
        if team is not None:
            query = query.where(queue_items.c.team.is_(None) if team == "" else queue_items.c.team == team)
        with self.engine.connect() as c:
            frame = pd.read_sql(query, c)
        for column in ("brands", "reasons", "transparency"):
            frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else [])
        return frame

    # -- case workflow: new → claimed → replied → resolved, or dismissed ------------------------

    def claim(self, item_id: int, agent: str, at: datetime | None = None) -> None:
        """Atomically claim a new case; raises QueueConflict naming who holds it otherwise. `at`: when it
        happened, for a history written after the fact (the demo's); else now."""
        now = _naive(at) or utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status == "new")
                               .values(status="claimed", assignee=agent, claimed_at=now, updated_at=now))
            if result.rowcount != 1:
                raise self._conflict(c, item_id, "claim")
            self._did(c, agent, "claim", item_id, at=now)

    def claim_next(self, agent: str, brand: str | None = None, teams: Iterable[str] = ()) -> int | None:
        """Claim the top new case (what 'Next' does); None when the queue is empty.

        With `teams` (the agent's, from rules.yaml), a case of one of them comes first; a case of another
        team, or of none, is taken only when those teams have no new case left.
        PostgreSQL locks the row with SELECT … FOR UPDATE SKIP LOCKED, so concurrent agents take
        different cases without waiting; SQLite serialises writers, and the conditional UPDATE
        (status still 'new') means a case is never claimed twice.
        """
        now = utcnow()
        teams = list(teams)
        for scope in ([teams] if teams else []) + [None]:
            for _ in range(20):
                with self.engine.begin() as c:
                    item_id = c.scalar(self._next_pick(now, brand, scope))
                    if item_id is None:
                        break
                    result = c.execute(queue_items.update()
                                       .where(queue_items.c.id == item_id, queue_items.c.status == "new")
                                       .values(status="claimed", assignee=agent, claimed_at=now, updated_at=now))
                    if result.rowcount == 1:
                        self._did(c, agent, "claim", item_id)
                        return int(item_id)
        return None

    def _next_pick(self, now: datetime, brand: str | None, teams: list[str] | None):
        """The query for the top new, unsnoozed case (of `brand`, of one of `teams`), row-locked on PostgreSQL."""
        pick = (sa.select(queue_items.c.id).where(queue_items.c.status == "new",
                                                  sa.or_(queue_items.c.snoozed_until.is_(None),
                                                         queue_items.c.snoozed_until <= now))
                .order_by(queue_items.c.priority.desc(), queue_items.c.due_at.asc(), queue_items.c.id.asc())
                .limit(1))
        if brand:
            pick = pick.where(queue_items.c.mention_key.in_(
                sa.select(classifications.c.mention_key).where(
                    classifications.c.brands.contains(json.dumps(brand, ensure_ascii=False), autoescape=True))))
        if teams:
            pick = pick.where(queue_items.c.team.in_(teams))
        if self.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        return pick

    def reassign(self, item_id: int, to: str, by: str) -> None:
        now = utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update().where(queue_items.c.id == item_id,
                                                          queue_items.c.status.in_(OPEN_STATUSES))
                               .values(assignee=to, updated_at=now, claimed_at=sa.func.coalesce(
                                   queue_items.c.claimed_at, now),
                                       status=sa.case((queue_items.c.status == "new", "claimed"),
                                                      else_=queue_items.c.status)))
            if result.rowcount != 1:
                raise self._conflict(c, item_id, "reassign")
            self._did(c, by, "reassign", item_id, detail={"to": to})

    def replied(self, item_id: int, agent: str, text: str, reply_id: str | None = None,
                reply_url: str | None = None, at: datetime | None = None) -> None:
        """The agent answered (through the platform, or by hand): first response time stops."""
        now = _naive(at) or utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status.in_(OPEN_STATUSES))
                               .values(status="replied", assignee=sa.func.coalesce(queue_items.c.assignee, agent),
                                       claimed_at=sa.func.coalesce(queue_items.c.claimed_at, now),
                                       first_response_at=sa.func.coalesce(queue_items.c.first_response_at, now),
                                       reply_id=reply_id, reply_url=reply_url, last_error=None, updated_at=now))
            if result.rowcount != 1:
                raise self._conflict(c, item_id, "reply to")
            self._did(c, agent, "reply", item_id, text=text, at=now,
                      detail={k: v for k, v in (("reply_id", reply_id), ("reply_url", reply_url)) if v} or None)

    def reply_failed(self, item_id: int, agent: str, text: str, error: str) -> None:
        """Posting failed: the case stays with the agent, the error is shown on it; never 'replied'."""
        now = utcnow()
        with self.engine.begin() as c:
            c.execute(queue_items.update().where(queue_items.c.id == item_id, queue_items.c.status == "new")
                      .values(status="claimed", assignee=agent, claimed_at=now))
            c.execute(queue_items.update().where(queue_items.c.id == item_id)
                      .values(last_error=error[:2000], updated_at=now))
            self._did(c, agent, "reply_failed", item_id, text=text, detail={"error": error[:2000]})

    def resolve(self, item_id: int, agent: str, note: str = "", at: datetime | None = None) -> None:
        """Close an open case; a note is kept on its timeline and in the audit log."""
        now = _naive(at) or utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status.in_(OPEN_STATUSES))
                               .values(status="resolved", resolved_at=now, updated_at=now,
                                       assignee=sa.func.coalesce(queue_items.c.assignee, agent)))
            if result.rowcount != 1:
                raise QueueConflict(f"queue item {item_id} is not open")
            self._did(c, agent, "resolve", item_id, text=note or None, detail={"note": note} if note else None,
                      at=now)

    def dismiss(self, item_id: int, agent: str, reason: str, note: str = "", at: datetime | None = None) -> None:
        """Close without an answer (spam, irrelevant, duplicate, other); the reason is kept."""
        if reason not in DISMISS_REASONS:
            raise ValueError(f"dismiss reason must be one of {', '.join(DISMISS_REASONS)}, got {reason!r}")
        now = _naive(at) or utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status.in_(OPEN_STATUSES))
                               .values(status="dismissed", dismiss_reason=reason, resolved_at=now, updated_at=now,
                                       assignee=sa.func.coalesce(queue_items.c.assignee, agent)))
            if result.rowcount != 1:
                raise QueueConflict(f"queue item {item_id} is not open")
            self._did(c, agent, "dismiss", item_id, text=note or None, detail={"reason": reason}, at=now)

    def snooze(self, item_id: int, agent: str, until: datetime) -> None:
        """Hide an open case from the queue until `until` (UTC)."""
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status.in_(OPEN_STATUSES))
                               .values(snoozed_until=_naive(until), updated_at=utcnow()))
            if result.rowcount != 1:
                raise QueueConflict(f"queue item {item_id} is not open")
            self._did(c, agent, "snooze", item_id, detail={"until": _naive(until).isoformat()})

    def note(self, item_id: int, agent: str, text: str) -> None:
        """An internal note on the case's timeline (never sent to the customer)."""
        if not text.strip():
            raise ValueError("a note needs some text")
        with self.engine.begin() as c:
            if c.scalar(sa.select(queue_items.c.id).where(queue_items.c.id == item_id)) is None:
                raise QueueConflict(f"queue item {item_id} does not exist")
            self._did(c, agent, "note", item_id, text=text)

    def bulk(self, action: str, item_ids: Iterable[int], agent: str, **options: Any) -> dict[int, str | None]:
        """Apply one action to many cases; per case None (done) or why it was not."""
        method = {"claim": self.claim, "resolve": self.resolve, "dismiss": self.dismiss, "snooze": self.snooze,
                  "reassign": lambda i, a, **o: self.reassign(i, o.pop("to"), a)}.get(action)
        if method is None:
            raise ValueError(f"unknown bulk action {action!r}")
        out: dict[int, str | None] = {}
        for item_id in item_ids:
            try:
                method(int(item_id), agent, **options)
                out[int(item_id)] = None
            except (QueueConflict, ValueError) as exc:
                out[int(item_id)] = str(exc)
        return out

    def case(self, item_id: int) -> dict:
        """A case with its mentions (and their labels) and every action, in time order, like a CRM record."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(queue_items).where(queue_items.c.id == item_id)).mappings().first()
            if row is None:
                raise QueueConflict(f"queue item {item_id} does not exist")
            posts = pd.read_sql(
                sa.select(mentions.c.key, mentions.c.created_at.label("at"), mentions.c.author.label("actor"),
                          mentions.c.text, mentions.c.url, mentions.c.source, mentions.c.author_followers,
                          classifications.c.lang, classifications.c.brands, classifications.c.intent,
                          classifications.c.category, classifications.c.severity, classifications.c.sentiment,
                          classifications.c.priority, classifications.c.reasons)
                .select_from(case_mentions.join(mentions, mentions.c.key == case_mentions.c.mention_key)
                             .outerjoin(classifications, classifications.c.mention_key == mentions.c.key))
                .where(case_mentions.c.case_id == item_id), c)
            events = pd.read_sql(sa.select(case_events).where(case_events.c.case_id == item_id), c)
        posts["kind"] = "mention"
        for column in ("brands", "reasons"):
            posts[column] = posts[column].map(lambda v: json.loads(v) if isinstance(v, str) else [])
        events = events.rename(columns={"mention_key": "key"})
        timeline = pd.concat([posts, events.drop(columns=["id", "case_id"])], ignore_index=True)
        timeline["at"] = pd.to_datetime(timeline["at"])
        timeline = timeline.sort_values(["at", "kind"], kind="stable").reset_index(drop=True)
        return {**dict(row), "timeline": timeline}

    def response_times(self, since: datetime | None = None) -> pd.DataFrame:
        """Cases opened since `since` (UTC): who holds them, when they were opened, first answered and
        closed; `first_response_minutes` is wall-clock minutes to the first reply (NaN while unanswered).
        The lead's page reads its medians and p90s per agent and per day from this."""
        query = sa.select(queue_items.c.id, queue_items.c.status, queue_items.c.assignee, queue_items.c.band,
                          queue_items.c.created_at, queue_items.c.claimed_at, queue_items.c.first_response_at,
                          queue_items.c.resolved_at, queue_items.c.due_at, queue_items.c.dismiss_reason)
        if since is not None:
            query = query.where(queue_items.c.created_at >= _naive(since) if since.tzinfo else since)
        with self.engine.connect() as c:
            frame = pd.read_sql(query, c)
        for column in ("created_at", "claimed_at", "first_response_at", "resolved_at", "due_at"):
            frame[column] = pd.to_datetime(frame[column])
        frame["first_response_minutes"] = (frame["first_response_at"] - frame["created_at"]).dt.total_seconds() / 60
        frame["breached"] = frame["due_at"].notna() & (
            frame["first_response_at"].fillna(pd.Timestamp(utcnow())) > frame["due_at"])
        return frame

    def newest_by_source(self) -> dict[str, datetime]:
        """The newest stored mention's time per source type (twitter, mastodon, …): how far each lags."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(mentions.c.source, sa.func.max(mentions.c.created_at))
                             .group_by(mentions.c.source)).all()
        return {source: newest for source, newest in rows if newest is not None}

    def _did(self, c: Connection, actor: str, action: str, item_id: int, text: str | None = None,
             detail: dict | None = None, at: datetime | None = None) -> None:
        """An agent's action: on the case's timeline and in the audit log (at `at`, else now)."""
        self._event(c, item_id, actor, action, text=text, detail=detail, at=at)
        self._audit(c, actor, action, queue_item_id=item_id, detail=detail, at=at)

    def _conflict(self, c: Connection, item_id: int, verb: str) -> "QueueConflict":
        row = c.execute(sa.select(queue_items.c.status, queue_items.c.assignee)
                        .where(queue_items.c.id == item_id)).first()
        if row is None:
            return QueueConflict(f"queue item {item_id} does not exist")
        holder = f" by {row.assignee}" if row.assignee else ""
        return QueueConflict(f"queue item {item_id} is already {row.status}{holder}")

    def audit(self, limit: int = 200) -> pd.DataFrame:
        with self.engine.connect() as c:
            return pd.read_sql(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit), c)

    def _audit(self, c: Connection, actor: str, action: str, mention_key: str | None = None,
               queue_item_id: int | None = None, detail: dict | None = None, at: datetime | None = None) -> None:
        c.execute(audit_log.insert().values(at=at or utcnow(), actor=actor, action=action, mention_key=mention_key,
                                            queue_item_id=queue_item_id,
                                            detail=json.dumps(detail, ensure_ascii=False) if detail else None))

    def record(self, actor: str, action: str, detail: dict | None = None) -> None:
        with self.engine.begin() as c:
            self._audit(c, actor, action, detail=detail)

    # -- trends ---------------------------------------------------------------------------

    def daily(self, source: str | None = None, lang: str | None = None) -> pd.DataFrame:
        """Per brand and day: volume and the count of each sentiment, for relevant mentions."""
        query = (sa.select(mentions.c.created_at, mentions.c.source, classifications.c.lang,
                           classifications.c.brands, classifications.c.sentiment)
                 .select_from(mentions.join(classifications, classifications.c.mention_key == mentions.c.key))
                 .where(classifications.c.relevant.is_(True), mentions.c.deleted_at.is_(None)))
        if source:
            query = query.where(mentions.c.source == source)
        if lang:
            query = query.where(classifications.c.lang == lang)
        with self.engine.connect() as c:
            frame = pd.read_sql(query, c)
        columns = ["day", "brand", "volume", "negative", "neutral", "positive", "net_sentiment", "negative_share"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame["brand"] = frame["brands"].map(json.loads)
        frame = frame.explode("brand").dropna(subset=["brand"])
        frame["day"] = pd.to_datetime(frame["created_at"]).dt.floor("D")
        counts = pd.crosstab([frame["day"], frame["brand"]], frame["sentiment"])
        for name in ("negative", "neutral", "positive"):
            if name not in counts:
                counts[name] = 0
        out = counts[["negative", "neutral", "positive"]].reset_index()
        out["volume"] = out[["negative", "neutral", "positive"]].sum(axis=1)
        out["net_sentiment"] = (out["positive"] - out["negative"]) / out["volume"]
        out["negative_share"] = out["negative"] / out["volume"]
        return out[columns].sort_values(["brand", "day"]).reset_index(drop=True)

    def alerts(self, since: datetime | None = None, brand: str | None = None, limit: int = 500) -> pd.DataFrame:
        """Stored crisis and spike alerts, latest window first (their SQL: pipeline/store/alerts.py)."""
        from pipeline.store.alerts import list_alerts

        return list_alerts(self, _naive(since), brand, limit)

    def sources(self) -> list[str]:
        with self.engine.connect() as c:
            return sorted(c.scalars(sa.select(mentions.c.source).distinct()))

    # -- upstream deletions ---------------------------------------------------------------

    def mark_deleted(self, key: str, actor: str, purge: bool = False, reason: str = "") -> bool:
        """Honour an upstream deletion: hide the mention (mark) or remove it and its labels (purge).

        Purging removes what hangs off the mention the way erasure does (`pipeline.desk.privacy`): its
        labels, its links in cases, a case left with no mention, its keys in alerts. Marking keeps the
        identity, drops the text, the title, the raw payload and the classification's reasons (they
        quote the text), and takes it out of the queue. Either way the key is remembered, so a later
        copy of the post is not stored again; the audit log keeps who, when and which key, never the
        text. Returns False when the mention is not stored.
        """
        with self.engine.begin() as c:
            if c.scalar(sa.select(mentions.c.key).where(mentions.c.key == key)) is None:
                return False
            if purge:
                from pipeline.desk.privacy import Removal, remove_mentions

                remove_mentions(c, [key], Removal())
            else:
                c.execute(mentions.update().where(mentions.c.key == key)
                          .values(deleted_at=utcnow(), text="", title=None, raw="{}"))
                c.execute(classifications.update().where(classifications.c.mention_key == key)
                          .values(reasons="[]", error=None))
                c.execute(queue_items.update().where(queue_items.c.mention_key == key,
                                                     queue_items.c.status.in_(OPEN_STATUSES))
                          .values(status="dismissed", updated_at=utcnow()))
            self.bury(c, [key], "purged" if purge else "deleted")
            self._audit(c, actor, "purge" if purge else "delete", mention_key=key,
                        detail={"reason": reason} if reason else None)
            return True

    # -- source health --------------------------------------------------------------------

    def record_health(self, source_name: str, items: int = 0, error: str | None = None,
                      backoff_until: datetime | None = None) -> None:
        """After one listener cycle: success (error None) or the error and when to try again (without the
        passwords and tokens of any URL in it)."""
        from pipeline.desk.redaction import redact

        now = utcnow()
        with self.engine.begin() as c:
            row = c.execute(sa.select(source_health).where(source_health.c.source_name == source_name)).first()
            values = {"updated_at": now, "last_items": items, "backoff_until": _naive(backoff_until),
                      "items_fetched": (row.items_fetched if row else 0) + items}
            if error is None:
                values["last_success_at"] = now
            else:
                values.update(last_error_at=now, last_error=redact(error)[:2000])
            if row:
                c.execute(source_health.update().where(source_health.c.source_name == source_name).values(**values))
            else:
                c.execute(source_health.insert().values(source_name=source_name, **values))

    def health(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return pd.read_sql(sa.select(source_health).order_by(source_health.c.source_name), c)

    # -- cursors --------------------------------------------------------------------------

    def get_cursor(self, source_name: str) -> Any:
        with self.engine.connect() as c:
            value = c.scalar(sa.select(cursors.c.cursor).where(cursors.c.source_name == source_name))
        return None if value is None else json.loads(value)

    def save_page(self, source_name: str, batch: list[Mention], cursor: Any) -> Saved:
        """Store a listener's page and the cursor after it in one transaction. A post the database
        refuses is listed (`Saved.refused`, and the audit log) and the rest of the page is stored:
        the cursor moves on, so one bad post never stops a source."""
        with self.engine.begin() as c:
            saved = self.store_mentions(batch, conn=c, strict=False)
            c.execute(self._upsert(cursors, [{"source_name": source_name, "cursor": json.dumps(cursor),
                                              "updated_at": utcnow()}], ["source_name"]))
            return saved

    def _tx(self, conn: Connection | None):
        if conn is not None:
            from contextlib import nullcontext

            return nullcontext(conn)
        return self.engine.begin()

    def transaction(self):
        """One unit of work: `with store.transaction() as conn:`, passing `conn=` to each write; all or nothing."""
        return self.engine.begin()


def case_key(mention_key: str, mention: dict) -> str:
    """One case per author per thread on a source; a mention without an author is a case of its own."""
    author = (mention.get("author") or "").strip().lower().lstrip("@")
    if not author:
        return mention_key
    thread = mention.get("thread_id") or ""
    return f"{mention.get('source') or mention_key.split(':', 1)[0]}:{author}:{thread}"


def calendar_of(queue) -> "Calendar":
    from pipeline.desk.sla import DAYS, Calendar

    hours = queue.working_hours
    if hours is None:
        return Calendar(tz=queue.timezone)
    return Calendar(tz=queue.timezone, days=tuple(hours.days), start=hours.start or datetime.min.time(),
                    end=hours.end)


def _mention_row(m: Mention) -> dict:
    return {
        "key": m.key, "source": m.source, "source_id": m.source_id, "url": m.url, "author": m.author,
        "author_followers": m.author_followers, "author_created_at": _naive(m.author_created_at),
        "created_at": _naive(m.created_at), "title": m.title, "text": m.text, "lang": m.lang,
        "parent_id": m.parent_id, "thread_id": m.thread_id,
        "raw": json.dumps(m.raw, ensure_ascii=True, default=str), "fetched_at": utcnow(),
    }


def _row_mention(row: Any) -> Mention:
    def aware(value):
        return None if value is None else value.replace(tzinfo=timezone.utc)

    return Mention(source=row["source"], source_id=row["source_id"], text=row["text"], url=row["url"],
                   created_at=aware(row["created_at"]), author=row["author"],
                   author_followers=row["author_followers"], author_created_at=aware(row["author_created_at"]),
                   title=row["title"], lang=row["lang"], parent_id=row["parent_id"], thread_id=row["thread_id"],
                   raw=json.loads(row["raw"] or "{}"))


def _labels_row(lab: Labels, now: datetime) -> dict:
    data = lab.to_dict()
    return {
        "mention_key": lab.mention_key, "model": lab.model, "lang": lab.lang, "relevant": lab.relevant,
        "brands": json.dumps(data["brands"], ensure_ascii=False),
        "competitors": json.dumps(data["competitors"], ensure_ascii=False),
        "sentiment": lab.sentiment, "sentiment_score": lab.sentiment_score, "complaint": lab.complaint,
        "complaint_score": lab.complaint_score, "intent": lab.intent, "category": lab.category,
        "severity": lab.severity, "needs_response": lab.needs_response,
        "priority": lab.priority, "transparency": json.dumps(data["transparency"]),
        "reasons": json.dumps(data["reasons"], ensure_ascii=False), "error": lab.error, "classified_at": now,
        "emotion": lab.emotion, "emotion_score": lab.emotion_score, "irony_score": lab.irony_score,
    }

"""All of Écoute's SQL, in SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

Tables: mentions, classifications, queue_items, cursors, audit_log (and schema_migrations).
Writes are idempotent upserts keyed by the mention's identity (source:source_id); each call is one
transaction, so a crash loses at most the batch in flight, never what was committed before.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .mention import Labels, Mention

DEFAULT_DB = "ecoute.db"
OPEN_STATUSES = ("new", "claimed")

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


MIGRATIONS = (("0001_initial", _initial), ("0002_source_health", _source_health),
              ("0003_category_severity", _category_severity))


class QueueConflict(Exception):
    """A queue action lost a race or does not apply to the item's current state."""


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
        self.engine: Engine = sa.create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.migrate()

    def migrate(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn, tables=[schema_migrations])
            done = set(conn.scalars(sa.select(schema_migrations.c.name)))
            for name, step in MIGRATIONS:
                if name not in done:
                    step(conn)
                    conn.execute(schema_migrations.insert().values(name=name, applied_at=utcnow()))

    def _upsert(self, table: sa.Table, rows: list[dict], keys: list[str], update: bool = True):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table).values(rows)
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        changing = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=changing)

    # -- mentions -------------------------------------------------------------------------

    def save_mentions(self, batch: Iterable[Mention], conn: Connection | None = None) -> int:
        """Upsert mentions; returns how many were new. Re-saving a mention updates it in place."""
        rows = [_mention_row(m) for m in batch]
        if not rows:
            return 0
        with self._tx(conn) as c:
            keys = [r["key"] for r in rows]
            known = set()
            for start in range(0, len(keys), 500):
                known |= set(c.scalars(sa.select(mentions.c.key).where(mentions.c.key.in_(keys[start:start + 500]))))
            for start in range(0, len(rows), 500):
                c.execute(self._upsert(mentions, rows[start:start + 500], ["key"]))
            return len(set(keys) - known)

    def save_labels(self, labels: Iterable[Labels], sla_seconds: float, min_priority: int = 0,
                    conn: Connection | None = None) -> int:
        """Store classifications and put every mention that needs a response in the queue.

        A mention already queued keeps its status (an agent's claim is never reset by a rerun).
        Returns how many queue items were added.
        """
        labels = list(labels)
        if not labels:
            return 0
        now = utcnow()
        with self._tx(conn) as c:
            rows = [_labels_row(lab, now) for lab in labels]
            for start in range(0, len(rows), 500):
                c.execute(self._upsert(classifications, rows[start:start + 500], ["mention_key"]))
            wanted = [lab for lab in labels if lab.needs_response and lab.priority >= min_priority]
            created = self._created_at(c, [lab.mention_key for lab in wanted])
            added = 0
            for lab in wanted:
                start_time = created.get(lab.mention_key) or now
                result = c.execute(self._upsert(queue_items, [{
                    "mention_key": lab.mention_key, "status": "new", "priority": lab.priority,
                    "due_at": start_time + pd.Timedelta(seconds=sla_seconds).to_pytimedelta(),
                    "created_at": now, "updated_at": now}], ["mention_key"], update=False))
                added += result.rowcount or 0
            return added

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

    def unclassified(self, limit: int = 10_000) -> list[Mention]:
        query = (sa.select(mentions).outerjoin(classifications, classifications.c.mention_key == mentions.c.key)
                 .where(classifications.c.mention_key.is_(None), mentions.c.deleted_at.is_(None)).limit(limit))
        with self.engine.connect() as c:
            return [_row_mention(row._mapping) for row in c.execute(query)]

    # -- queue ----------------------------------------------------------------------------

    def queue(self, statuses: tuple[str, ...] = OPEN_STATUSES, brand: str | None = None,
              limit: int = 500) -> pd.DataFrame:
        """Open queue items, highest priority first, oldest first among equals."""
        query = (sa.select(queue_items.c.id, queue_items.c.status, queue_items.c.priority,
                           queue_items.c.assignee, queue_items.c.due_at, queue_items.c.claimed_at,
                           mentions.c.key, mentions.c.source, mentions.c.url, mentions.c.author,
                           mentions.c.author_followers, mentions.c.created_at, mentions.c.title, mentions.c.text,
                           classifications.c.lang, classifications.c.brands, classifications.c.sentiment,
                           classifications.c.intent, classifications.c.category, classifications.c.severity,
                           classifications.c.complaint_score, classifications.c.reasons)
                 .select_from(queue_items.join(mentions, mentions.c.key == queue_items.c.mention_key)
                              .join(classifications, classifications.c.mention_key == mentions.c.key))
                 .where(queue_items.c.status.in_(statuses), mentions.c.deleted_at.is_(None))
                 .order_by(queue_items.c.priority.desc(), mentions.c.created_at.asc()).limit(limit))
        if brand:
            query = query.where(classifications.c.brands.contains(json.dumps(brand, ensure_ascii=False)))
        with self.engine.connect() as c:
            frame = pd.read_sql(query, c)
        for column in ("brands", "reasons"):
            frame[column] = frame[column].map(json.loads)
        return frame

    def claim(self, item_id: int, agent: str) -> None:
        """Atomically claim a new item; raises QueueConflict naming who holds it otherwise."""
        now = utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status == "new")
                               .values(status="claimed", assignee=agent, claimed_at=now, updated_at=now))
            if result.rowcount != 1:
                row = c.execute(sa.select(queue_items.c.status, queue_items.c.assignee)
                                .where(queue_items.c.id == item_id)).first()
                if row is None:
                    raise QueueConflict(f"queue item {item_id} does not exist")
                holder = f" by {row.assignee}" if row.assignee else ""
                raise QueueConflict(f"queue item {item_id} is already {row.status}{holder}")
            self._audit(c, agent, "claim", queue_item_id=item_id)

    def resolve(self, item_id: int, agent: str, note: str = "") -> None:
        """Close an open item (new or claimed); a note is kept in the audit log."""
        now = utcnow()
        with self.engine.begin() as c:
            result = c.execute(queue_items.update()
                               .where(queue_items.c.id == item_id, queue_items.c.status.in_(OPEN_STATUSES))
                               .values(status="resolved", resolved_at=now, updated_at=now,
                                       assignee=sa.func.coalesce(queue_items.c.assignee, agent)))
            if result.rowcount != 1:
                raise QueueConflict(f"queue item {item_id} is not open")
            self._audit(c, agent, "resolve", queue_item_id=item_id, detail={"note": note} if note else None)

    def audit(self, limit: int = 200) -> pd.DataFrame:
        with self.engine.connect() as c:
            return pd.read_sql(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit), c)

    def _audit(self, c: Connection, actor: str, action: str, mention_key: str | None = None,
               queue_item_id: int | None = None, detail: dict | None = None) -> None:
        c.execute(audit_log.insert().values(at=utcnow(), actor=actor, action=action, mention_key=mention_key,
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

    def sources(self) -> list[str]:
        with self.engine.connect() as c:
            return sorted(c.scalars(sa.select(mentions.c.source).distinct()))

    # -- upstream deletions ---------------------------------------------------------------

    def mark_deleted(self, key: str, actor: str, purge: bool = False, reason: str = "") -> bool:
        """Honour an upstream deletion: hide the mention (mark) or remove it and its labels (purge).

        Either way the audit log keeps who, when and which key, never the deleted text.
        Returns False when the mention is not stored.
        """
        with self.engine.begin() as c:
            if c.scalar(sa.select(mentions.c.key).where(mentions.c.key == key)) is None:
                return False
            if purge:
                c.execute(queue_items.delete().where(queue_items.c.mention_key == key))
                c.execute(classifications.delete().where(classifications.c.mention_key == key))
                c.execute(mentions.delete().where(mentions.c.key == key))
            else:
                c.execute(mentions.update().where(mentions.c.key == key)
                          .values(deleted_at=utcnow(), text="", title=None, raw="{}"))
                c.execute(queue_items.update().where(queue_items.c.mention_key == key,
                                                     queue_items.c.status.in_(OPEN_STATUSES))
                          .values(status="dismissed", updated_at=utcnow()))
            self._audit(c, actor, "purge" if purge else "delete", mention_key=key,
                        detail={"reason": reason} if reason else None)
            return True

    # -- source health --------------------------------------------------------------------

    def record_health(self, source_name: str, items: int = 0, error: str | None = None,
                      backoff_until: datetime | None = None) -> None:
        """After one listener cycle: success (error None) or the error and when to try again."""
        now = utcnow()
        with self.engine.begin() as c:
            row = c.execute(sa.select(source_health).where(source_health.c.source_name == source_name)).first()
            values = {"updated_at": now, "last_items": items, "backoff_until": _naive(backoff_until),
                      "items_fetched": (row.items_fetched if row else 0) + items}
            if error is None:
                values["last_success_at"] = now
            else:
                values.update(last_error_at=now, last_error=error[:2000])
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

    def save_page(self, source_name: str, batch: list[Mention], cursor: Any) -> int:
        """Store a listener's page and the cursor after it in one transaction."""
        with self.engine.begin() as c:
            new = self.save_mentions(batch, conn=c)
            c.execute(self._upsert(cursors, [{"source_name": source_name, "cursor": json.dumps(cursor),
                                              "updated_at": utcnow()}], ["source_name"]))
            return new

    def _tx(self, conn: Connection | None):
        if conn is not None:
            from contextlib import nullcontext

            return nullcontext(conn)
        return self.engine.begin()


def _mention_row(m: Mention) -> dict:
    return {
        "key": m.key, "source": m.source, "source_id": m.source_id, "url": m.url, "author": m.author,
        "author_followers": m.author_followers, "author_created_at": _naive(m.author_created_at),
        "created_at": _naive(m.created_at), "title": m.title, "text": m.text, "lang": m.lang,
        "parent_id": m.parent_id, "thread_id": m.thread_id,
        "raw": json.dumps(m.raw, ensure_ascii=False, default=str), "fetched_at": utcnow(),
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
    }

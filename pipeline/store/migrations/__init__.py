"""Schema migrations with Alembic, for SQLite and PostgreSQL alike, configured in code (no alembic.ini).

Revisions 0001…0011 live in `versions/`; each calls one named step function (0001–0005 are the
steps `Store.migrate` applied before Alembic, kept in `pipeline.store.MIGRATIONS`; 0006 adds users).
Each revision also records its step's name in `schema_migrations`, the table the pre-Alembic code
read, so that older code opening a newer store finds nothing to do.

A store created before Alembic has `schema_migrations` rows and no `alembic_version`: `upgrade`
stamps it at the last revision whose step (and every step before it) is recorded there, then runs
the rest. The same rule repairs a store whose `schema_migrations` lost a step: the steps are
idempotent, so that step and the ones after it simply run again.

`Store(...)` calls `upgrade` on every construction, so an up-to-date store costs two small queries
and never loads Alembic's machinery. Concurrent upgrades wait: on PostgreSQL on an advisory lock, on SQLite on the database's write lock.

    revision  step (schema_migrations name)
    0001      0001_initial              mentions, classifications, queue_items, cursors, audit_log
    0002      0002_source_health        source_health
    0003      0003_category_severity    classifications.category / severity
    0004      0005_cases                cases: case_mentions, case_events, SLA and reply columns
    0005      0004_alerts               alerts, alert_deliveries
    0006      0006_users                users (pipeline/desk/users.py)
    0007      0007_analytics_indexes    indexes for the trend counts (pipeline/analytics/trend_counts.py)
    0008      0008_tombstones           keys of deleted, purged and erased mentions (never stored again)
    0009      0009_sign_in_throttle     sign_in_failures, users.generation (pipeline/desk/users.py)
    0010      0010_emotion_irony        classifications.emotion / emotion_score / irony_score
    0011      0011_desk_automation      queue_items.team / tags / template, case_automations,
                                        case_notifications, person_links, users.availability

(0005_cases was applied before 0004_alerts by the old code; the revisions keep that order.)
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
# revision → the step it applies, in order; the step names are what schema_migrations holds
REVISIONS = {"0001": "0001_initial", "0002": "0002_source_health", "0003": "0003_category_severity",
             "0004": "0005_cases", "0005": "0004_alerts", "0006": "0006_users", "0007": "0007_analytics_indexes",
             "0008": "0008_tombstones", "0009": "0009_sign_in_throttle", "0010": "0010_emotion_irony",
             "0011": "0011_desk_automation"}
HEAD = list(REVISIONS)[-1]
VERSION_TABLE = "alembic_version"
_LOCK_ID = 0x6563_6F75   # 'ecou': PostgreSQL advisory lock held while migrating
_PROCESS_LOCK = threading.Lock()


def config(connection: Connection | None = None):
    """An Alembic Config for this package; `connection` is the one env.py migrates."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=1)
def script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def upgrade(engine: Engine, target: str = "head") -> None:
    """Bring the store to `target` (default: the newest revision), in one transaction.

    Alembic's `context` is process-global, so migrations in one process take turns (a lock);
    processes take turns too (PostgreSQL: an advisory lock; SQLite: its write lock, taken first),
    and whoever comes second finds it done.
    """
    with engine.connect() as conn:
        if target == "head" and _up_to_date(conn):
            return
    with _PROCESS_LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        elif conn.dialect.name == "sqlite":
            # the write lock now, not at the first write: pysqlite runs DDL outside any transaction,
            # so two commands opening a new store both created its tables and the second crashed
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        if target == "head" and _up_to_date(conn):
            return
        _stamp_legacy(conn)
        _run(conn, target)


def current(engine: Engine) -> str | None:
    """The store's revision, or None for an empty (or pre-Alembic) store."""
    with engine.connect() as conn:
        return _version(conn)


class Unreadable(Exception):
    """The store at a URL could not be read (no server, no such database, not a database)."""


def revision_of(url: str) -> str | None:
    """The revision of the store at `url` without migrating it (None: empty or pre-Alembic); raises Unreadable."""
    engine = sa.create_engine(url)
    try:
        return current(engine)
    except sa.exc.SQLAlchemyError as exc:
        raise Unreadable(str(exc)) from exc
    finally:
        engine.dispose()


def _run(conn: Connection, target: str) -> None:
    from alembic.runtime.environment import EnvironmentContext

    script = script_directory()
    with EnvironmentContext(config(conn), script, fn=lambda rev, _ctx: script._upgrade_revs(target, rev),
                            destination_rev=target):
        script.run_env()


def _up_to_date(conn: Connection) -> bool:
    """At head, and schema_migrations (when there is one) agrees; a lost schema_migrations is no reason to rerun."""
    if _version(conn) != HEAD:
        return False
    recorded = _recorded(conn)
    return not recorded or set(REVISIONS.values()) <= recorded


def _version(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.scalar(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))


def _recorded(conn: Connection) -> set[str]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    return set(conn.scalars(sa.text("SELECT name FROM schema_migrations")))


def legacy_revision(recorded: set[str]) -> str | None:
    """The last revision whose step and all steps before it are recorded in schema_migrations."""
    found = None
    for revision, step in REVISIONS.items():
        if step not in recorded:
            break
        found = revision
    return found


def _stamp_legacy(conn: Connection) -> None:
    """Point alembic_version at what schema_migrations says was applied, when that is behind it."""
    recorded = _recorded(conn)
    if not recorded:
        return
    stamp = legacy_revision(recorded)
    version = _version(conn)
    order = list(REVISIONS)
    if version is not None and (stamp is not None and order.index(version) <= order.index(stamp)):
        return
    sa.Table(VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True)
             ).create(conn, checkfirst=True)
    conn.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
    if stamp is not None:
        conn.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": stamp})


def apply(step_name: str) -> None:
    """Run one named step inside the current Alembic migration and record it in schema_migrations."""
    from alembic import op

    from pipeline.store import metadata, schema_migrations, steps, utcnow

    conn = op.get_bind()
    steps()[step_name](conn)
    metadata.create_all(conn, tables=[schema_migrations])
    if conn.scalar(sa.select(schema_migrations.c.name).where(schema_migrations.c.name == step_name)) is None:
        conn.execute(schema_migrations.insert().values(name=step_name, applied_at=utcnow()))

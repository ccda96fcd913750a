"""Schema migrations: Alembic revisions over the named steps; old stores are stamped and upgraded.

Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import pipeline.store.migrations as M
import pipeline.store as S
from pipeline.mention import Labels, Mention
from pipeline.store import Store, database_url

TABLES = {"mentions", "classifications", "queue_items", "case_mentions", "case_events", "cursors", "audit_log",
          "source_health", "alerts", "alert_deliveries", "users", "sign_in_failures", "schema_migrations",
          "alembic_version"}


def old_store(url: str, steps: int) -> sa.Engine:
    """A store as the pre-Alembic code left it: the first `steps` named steps applied and recorded."""
    engine = sa.create_engine(database_url(url))
    with engine.begin() as conn:
        S.metadata.create_all(conn, tables=[S.schema_migrations])
        for name, step in S.MIGRATIONS[:steps]:
            step(conn)
            conn.execute(S.schema_migrations.insert().values(name=name, applied_at=S.utcnow()))
    return engine


def a_case(store: Store) -> int:
    mention = Mention(source="twitter", source_id="1", text="@aerolia where is my bag", author="@dan",
                      created_at=datetime(2026, 11, 20, 10, tzinfo=timezone.utc))
    with store.engine.begin() as conn:   # as the old code wrote it (today's save_mentions reads tombstones)
        conn.execute(S.mentions.insert().values(S._mention_row(mention)))
    store.save_labels([Labels(mention_key=mention.key, lang="en", relevant=True, brands=("Aerolia",),
                              sentiment="negative", sentiment_score=0.9, complaint=True, complaint_score=0.9,
                              intent="complaint", needs_response=True, priority=60, model="test")], 3600)
    return int(store.queue().iloc[0]["id"])


def test_a_fresh_store_reaches_head_with_every_table_and_step_recorded(backend_db):
    store = Store(backend_db)
    assert M.current(store.engine) == M.HEAD == list(M.REVISIONS)[-1]
    assert TABLES <= set(sa.inspect(store.engine).get_table_names())
    with store.engine.connect() as conn:
        recorded = set(conn.scalars(sa.select(S.schema_migrations.c.name)))
    assert recorded == {name for name, _ in S.MIGRATIONS} == set(M.REVISIONS.values())
    assert list(M.REVISIONS) == [f"{i:04d}" for i in range(1, len(M.REVISIONS) + 1)]
    indexed = {ix["name"] for ix in sa.inspect(store.engine).get_indexes("classifications")}
    assert "ix_classifications_classified_at" in indexed       # 0007: what the trend counts read by


def test_the_revisions_chain_in_the_order_of_the_named_steps():
    script = M.script_directory()
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")][::-1]
    assert chain == list(M.REVISIONS)
    assert [M.REVISIONS[r] for r in chain] == [name for name, _ in S.MIGRATIONS]


def test_a_store_written_by_the_old_code_is_stamped_then_upgraded_keeping_its_data(backend_db):
    engine = old_store(backend_db, steps=5)          # every pre-Alembic step, through 0004_alerts
    old = Store.__new__(Store)                        # the old code's view: no users table, no alembic_version
    old.url, old.engine = database_url(backend_db), engine
    case_id = a_case(old)
    assert not sa.inspect(engine).has_table("alembic_version") and not sa.inspect(engine).has_table("users")

    store = Store(backend_db)
    assert M.current(store.engine) == M.HEAD
    assert sa.inspect(store.engine).has_table("users")
    assert int(store.queue().iloc[0]["id"]) == case_id and store.count("mentions") == 1


def test_a_store_from_before_cases_gets_its_queue_items_turned_into_cases(backend_db):
    engine = old_store(backend_db, steps=3)          # 0001–0003: queue items without cases
    assert M.legacy_revision({"0001_initial", "0002_source_health", "0003_category_severity"}) == "0003"
    with engine.begin() as conn:
        conn.execute(S.mentions.insert().values(key="twitter:1", source="twitter", source_id="1", text="late again",
                                                author="@dan", fetched_at=S.utcnow()))
        conn.execute(S.queue_items.insert().values(mention_key="twitter:1", status="new", priority=50,
                                                   created_at=S.utcnow(), updated_at=S.utcnow()))
    store = Store(backend_db)
    assert M.current(store.engine) == M.HEAD
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(S.queue_items.c.case_key)).scalar() == "twitter:1"
        assert conn.execute(sa.select(S.case_mentions.c.mention_key)).scalar() == "twitter:1"


def test_an_up_to_date_store_opens_without_running_alembic(backend_db, monkeypatch):
    Store(backend_db)
    monkeypatch.setattr(M, "_run", lambda *a: pytest.fail("alembic ran on an up-to-date store"))
    Store(backend_db)


def test_a_step_missing_from_schema_migrations_runs_again(backend_db):
    store = Store(backend_db)
    with store.engine.begin() as conn:
        conn.execute(S.schema_migrations.delete().where(S.schema_migrations.c.name == "0004_alerts"))
    with store.engine.connect() as conn:
        assert M._version(conn) == M.HEAD
    Store(backend_db)
    with store.engine.connect() as conn:
        assert "0004_alerts" in set(conn.scalars(sa.select(S.schema_migrations.c.name)))


def test_stores_opened_at_once_on_a_new_database_migrate_it_once(backend_db):
    errors = []

    def open_store():
        try:
            Store(backend_db)
        except Exception as exc:   # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert M.current(Store(backend_db).engine) == M.HEAD


def test_the_alembic_environment_also_runs_on_its_own_against_ecoute_db(tmp_path, monkeypatch):
    from alembic import command

    monkeypatch.setenv("ECOUTE_DB", str(tmp_path / "by-hand.db"))
    command.upgrade(M.config(), "head")    # what `alembic upgrade head` does with this package's env.py
    engine = sa.create_engine(database_url())
    assert M.current(engine) == M.HEAD and sa.inspect(engine).has_table("users")


def test_a_store_that_lost_schema_migrations_trusts_alembic_version(backend_db, monkeypatch):
    store = Store(backend_db)
    with store.engine.begin() as conn:
        conn.execute(S.schema_migrations.delete())
    monkeypatch.setattr(M, "_run", lambda *a: pytest.fail("alembic ran on a store at head"))
    Store(backend_db)


def test_two_commands_migrating_a_new_store_at_once_both_succeed(backend_db):
    import subprocess
    import sys

    code = "import sys; from pipeline.store import Store; Store(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, backend_db], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert M.current(Store(backend_db).engine) == M.HEAD


def test_a_store_at_0007_gains_sign_in_throttling_and_keeps_its_users(backend_db):
    from pipeline.desk import users

    engine = old_store(backend_db, steps=5)
    with engine.begin() as conn:       # the users table as 0006 made it, before users.generation
        conn.execute(sa.text("CREATE TABLE users (name VARCHAR(120) PRIMARY KEY, role VARCHAR(20) NOT NULL, "
                             "password_hash TEXT, created_at TIMESTAMP NOT NULL, disabled BOOLEAN NOT NULL)"))
        S.steps()["0007_analytics_indexes"](conn)
        for name in ("0006_users", "0007_analytics_indexes"):
            conn.execute(S.schema_migrations.insert().values(name=name, applied_at=S.utcnow()))
        conn.execute(sa.text("INSERT INTO users VALUES ('ana', 'agent', :digest, :now, false)"),
                     {"digest": users._hasher.hash("correct horse battery"), "now": S.utcnow()})
    store = Store(backend_db)
    assert M.current(store.engine) == M.HEAD and sa.inspect(store.engine).has_table("sign_in_failures")
    assert users.get_user(store, "ana").generation == 0
    assert users.authenticate(store, "ana", "correct horse battery", client="10.0.0.1").name == "ana"


def test_a_store_at_0009_gains_emotion_and_irony_columns_and_keeps_its_labels(backend_db):
    engine = old_store(backend_db, steps=9)
    with engine.begin() as conn:        # classifications as 0001 made it, before 0010
        for column in S.EMOTION_IRONY_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE classifications DROP COLUMN {column}"))
    mention = Mention(source="twitter", source_id="1", text="@aerolia where is my bag")
    with engine.begin() as conn:        # as 0009's code wrote them
        conn.execute(S.mentions.insert().values(S._mention_row(mention)))
        conn.execute(S.classifications.insert().values(
            {k: v for k, v in S._labels_row(Labels(mention.key, "en", True, ("Aerolia",), "negative", 0.9, True, 0.9,
                                                   "complaint", True, 60), S.utcnow()).items()
             if k not in S.EMOTION_IRONY_COLUMNS}))
    store = Store(backend_db)
    assert M.current(store.engine) == M.HEAD
    assert set(S.EMOTION_IRONY_COLUMNS) <= {c["name"] for c in sa.inspect(store.engine).get_columns("classifications")}
    row = store.mention_rows().iloc[0]
    assert row["sentiment"] == "negative" and row["priority"] == 60
    assert row[["emotion", "emotion_score", "irony_score"]].isna().all()

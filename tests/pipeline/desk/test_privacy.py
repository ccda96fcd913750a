"""Erasure on request and retention: what a data-protection officer would check.

After `erase`, no table names the person; other people's data is untouched; the audit log says who
asked, when and how much went, never whom. `prune` drops what is older than the retention period
but never an open case. Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

import pipeline.store as S
from pipeline.mention import Labels, Mention
from pipeline.desk.privacy import erase, handle_variants, prune
from pipeline.store import Store
from pipeline.store.alerts import alert_deliveries, alerts

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
HANDLE = "dan_h4ndle"


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def post(i, author=f"@{HANDLE}", source="twitter", thread="t1", at=NOW, text=None) -> Mention:
    return Mention(source=source, source_id=str(i), text=text or f"{author} says: my bag is lost ({i})",
                   author=author, thread_id=thread, created_at=at)


def add(store, *posts) -> None:
    store.save_mentions(posts)
    store.save_labels([Labels(mention_key=p.key, lang="en", relevant=True, brands=("Aerolia",), sentiment="negative",
                              sentiment_score=0.9, complaint=True, complaint_score=0.9, intent="complaint",
                              needs_response=True, priority=50, model="test") for p in posts], 3600)


def case_of(store, key) -> int:
    with store.engine.connect() as c:
        return c.scalar(sa.select(S.case_mentions.c.case_id).where(S.case_mentions.c.mention_key == key))


def alert(store, subject, keys, kind="volume_spike", end=NOW) -> int:
    naive = end.replace(tzinfo=None)
    with store.engine.begin() as c:
        alert_id = c.execute(alerts.insert().values(
            kind=kind, brand="Aerolia", subject=subject, window_start=naive - timedelta(hours=1), window_end=naive,
            value=10, baseline=1, score=6, reason=f"post {subject}" if subject else "10 mentions",
            mention_keys=json.dumps(keys), created_at=naive, updated_at=naive)).inserted_primary_key[0]
        c.execute(alert_deliveries.insert().values(alert_id=alert_id, webhook="slack", status="sent", attempts=1))
    return alert_id


def everything(store) -> str:
    """Every row of every table, as text: what a search for the person would find."""
    with store.engine.connect() as c:
        return "\n".join(pd.read_sql(sa.select(table), c).to_csv()
                         for table in S.metadata.sorted_tables if sa.inspect(c).has_table(table.name))


@pytest.fixture
def desk(store):
    """Dan: two tweets in one thread (a case with a reply and a note) and a Reddit post; Eve: one tweet."""
    add(store, post(1), post(2), post("t3_abc", author=f"u/{HANDLE}", source="reddit", thread="t3_abc"),
        post(9, author="@eve", thread="t9", text="@aerolia no wifi again"))
    dan = case_of(store, "twitter:1")
    store.claim(dan, "ana")
    store.note(dan, "ana", f"@{HANDLE} is a frequent flyer, booking XY12")
    store.replied(dan, "ana", f"Hi @{HANDLE}, we are on it", reply_id="77", reply_url="https://x.com/i/77")
    eve = case_of(store, "twitter:9")
    store.note(eve, "ana", f"same outage as @{HANDLE}'s case")
    alert(store, "", ["twitter:1", "twitter:9"])
    alert(store, "twitter:2", ["twitter:2"], kind="fast_post")
    with store.engine.begin() as c:
        store._audit(c, "listener", "delete", mention_key="twitter:2")
    return {"dan": dan, "eve": eve}


def test_erasure_leaves_nothing_that_names_the_person_and_keeps_everyone_else(store, desk):
    assert HANDLE in everything(store)
    removal = erase(store, f"@{HANDLE.upper()}", actor="dpo")
    assert HANDLE not in everything(store).lower()
    assert removal.rows["mentions"] == 3 and removal.rows["classifications"] == 3
    assert removal.rows["queue_items"] == 2 and removal.rows["alerts"] == 1
    assert removal.changed == {"alerts": 1, "audit_log": 1, "case_events": 1}

    assert store.count("mentions") == 1 and list(store.queue()["key"]) == ["twitter:9"]
    with store.engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(S.case_events).where(
            S.case_events.c.case_id == desk["dan"])) == 0
        [spike] = c.execute(sa.select(alerts)).mappings().all()
        assert spike["kind"] == "volume_spike" and json.loads(spike["mention_keys"]) == ["twitter:9"]
        assert c.scalar(sa.select(sa.func.count()).select_from(alert_deliveries)) == 1
    notes = store.case(desk["eve"])["timeline"].set_index("kind")
    assert notes.loc["note", "text"] == "[erased]"       # a note quoting the person, on someone else's case


def test_the_audit_log_says_who_asked_when_and_how_much_but_not_whom(store, desk):
    erase(store, HANDLE, actor="dpo")
    entry = store.audit().iloc[0]
    assert (entry["actor"], entry["action"], entry["mention_key"]) == ("dpo", "erase", None)
    assert pd.notna(entry["at"])
    detail = json.loads(entry["detail"])
    assert detail["removed"]["mentions"] == 3 and detail["source"] is None
    assert HANDLE not in entry.to_json()


def test_erasure_can_be_limited_to_one_source_and_any_spelling_of_the_handle_works(store, desk):
    assert handle_variants("u/Dan") == handle_variants("@dan") == ["dan", "@dan", "u/dan"]
    removal = erase(store, f"u/{HANDLE}", source="reddit")
    assert removal.rows["mentions"] == 1
    assert sorted(store.mention_rows()["key"]) == ["twitter:1", "twitter:2", "twitter:9"]
    with pytest.raises(ValueError, match="give the author's handle"):
        erase(store, "@")


def test_a_dry_run_counts_the_same_rows_and_changes_nothing(store, desk):
    before = everything(store)
    planned = erase(store, HANDLE, dry_run=True)
    assert everything(store) == before and planned.dry_run
    assert planned.line().startswith("would remove ") and "3 mentions" in planned.line()
    done = erase(store, HANDLE)
    assert (done.rows, done.changed) == (planned.rows, planned.changed)
    assert erase(store, HANDLE).line() == "removed nothing"


# -- retention -------------------------------------------------------------------------------------

def test_pruning_drops_old_closed_cases_but_never_an_open_one(store):
    old, recent = NOW - timedelta(days=400), NOW - timedelta(days=10)
    add(store, post(1, author="@ann", thread="a", at=old),                      # closed, all old: goes
        post(2, author="@bob", thread="b", at=old),                             # open, old: stays
        post(3, author="@cy", thread="c", at=old), post(4, author="@cy", thread="c", at=recent),  # closed, mixed
        post(5, author="@dee", thread="d", at=recent))                          # recent: stays
    for key in ("twitter:1", "twitter:3"):
        store.resolve(case_of(store, key), "ana", note="done")
    store.claim(case_of(store, "twitter:2"), "bo")
    old_alert = alert(store, "", ["twitter:1"], end=old)
    alert(store, "", ["twitter:4"], end=recent)
    cy = case_of(store, "twitter:3")

    removal = prune(store, 365, now=NOW, actor="cron")
    assert sorted(store.mention_rows()["key"]) == ["twitter:2", "twitter:4", "twitter:5"]
    assert removal.rows["mentions"] == 2 and removal.rows["queue_items"] == 1 and removal.rows["alerts"] == 1
    assert case_of(store, "twitter:2") is not None                               # the open case is whole
    assert case_of(store, "twitter:4") == cy                                     # the mixed case keeps its new post
    with store.engine.connect() as c:
        assert c.scalar(sa.select(S.queue_items.c.mention_key).where(S.queue_items.c.id == cy)) == "twitter:4"
        assert c.scalar(sa.select(alerts.c.id).where(alerts.c.id == old_alert)) is None
    entry = store.audit().iloc[0]
    assert (entry["actor"], entry["action"]) == ("cron", "prune")
    assert json.loads(entry["detail"])["before"] == "2025-11-20T10:00:00"


def test_a_mention_without_a_date_ages_from_when_it_was_fetched_and_dry_runs_keep_it(store):
    add(store, Mention(source="rss", source_id="p1", text="aerolia review", author="@blog"))
    with store.engine.begin() as c:
        c.execute(S.mentions.update().values(fetched_at=(NOW - timedelta(days=40)).replace(tzinfo=None)))
    store.resolve(case_of(store, "rss:p1"), "ana")
    assert prune(store, timedelta(days=30), now=NOW, dry_run=True).rows["mentions"] == 1
    assert store.count("mentions") == 1
    assert prune(store, timedelta(days=60), now=NOW).rows["mentions"] == 0
    assert prune(store, timedelta(days=30), now=NOW).rows["mentions"] == 1
    assert store.count("mentions") == 0 and store.count("queue_items") == 0


def test_retention_days_is_read_from_the_privacy_section(rules):
    from pipeline.rules import RulesError, parse_rules

    assert rules.privacy.retention_days == 365
    base = "brands:\n  - name: Aerolia\n    keywords: [aerolia]\n"
    assert parse_rules(base).privacy.retention_days is None
    with pytest.raises(RulesError, match=r"rules.yaml:5 privacy.retention_days: Input should be greater than or equal to 1"):
        parse_rules(base + "privacy:\n  retention_days: 0\n")

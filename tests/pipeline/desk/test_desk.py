"""The response desk as a team lead sees it: cases, the workflow, SLA clocks, concurrent agents.

Runs on SQLite and, when ECOUTE_TEST_PG points at a PostgreSQL cluster (.ci/postgres.sh), on it too.
"""
import threading
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.mention import Labels, Mention
from pipeline.rules import parse_rules
from pipeline.desk.sla import Calendar, add_working_time, humanise, sla_state, working_time_between
from pipeline.store import QueueConflict, Store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)   # a Friday


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def post(i, author="@dan", thread=None, at=NOW, **extra) -> Mention:
    return Mention(source="twitter", source_id=str(i), text=f"post {i}", author=author, thread_id=thread,
                   created_at=at, **extra)


def labels(m: Mention, priority=50, intent="complaint") -> Labels:
    return Labels(mention_key=m.key, lang="en", relevant=True, brands=("Aerolia",), sentiment="negative",
                  sentiment_score=0.9, complaint=True, complaint_score=0.9, intent=intent,
                  needs_response=True, priority=priority, reasons=("complaint 0.90",), model="test")


def add(store, *posts, priority=50, queue=3600):
    store.save_mentions(posts)
    return store.save_labels([labels(p, priority) for p in posts], queue)


def queue_rules(extra: str):
    return parse_rules("brands:\n  - name: Aerolia\n    keywords: [aerolia]\nqueue:\n" + extra).queue


def test_one_author_in_one_thread_is_one_case_and_a_new_post_reopens_it(store):
    add(store, post(1, thread="t1"), post(2, thread="t1"), post(3, author="@eve", thread="t1"),
        post(4, thread="t2"))
    cases = store.queue()
    assert len(cases) == 3                                        # dan/t1 (2 posts), eve/t1, dan/t2
    dan = cases[cases["case_key"] == "twitter:dan:t1"].iloc[0]
    assert dan["mentions"] == 2 and dan["key"] == "twitter:2"    # shows the newest post
    store.claim(int(dan["id"]), "ana")
    store.replied(int(dan["id"]), "ana", "Sorry Dan, we're on it")
    store.resolve(int(dan["id"]), "ana", note="rebooked")
    assert int(dan["id"]) not in set(store.queue()["id"])
    add(store, post(5, thread="t1", at=NOW + timedelta(hours=2)))  # Dan writes again in the same thread
    reopened = store.queue().set_index("id").loc[int(dan["id"])]
    assert (reopened["status"], reopened["assignee"], reopened["mentions"]) == ("claimed", "ana", 3)
    kinds = store.case(int(dan["id"]))["timeline"]["kind"].tolist()
    assert kinds.count("mention") == 3 and "reopened" in kinds
    assert kinds.index("reply") < kinds.index("resolve") < kinds.index("reopened")


def test_the_timeline_keeps_every_post_action_note_and_reply_with_who_and_when(store):
    add(store, post(1))
    case_id = int(store.queue().iloc[0]["id"])
    store.claim(case_id, "ana")
    store.note(case_id, "ana", "VIP customer, check the booking first")
    store.reassign(case_id, "bo", by="ana")
    store.replied(case_id, "bo", "Hi Dan, refund issued", reply_id="1799", reply_url="https://x.com/i/1799")
    case = store.case(case_id)
    timeline = case["timeline"]
    assert timeline["kind"].tolist() == ["mention", "opened", "claim", "note", "reassign", "reply"]
    assert timeline.set_index("kind").loc["note", "actor"] == "ana"
    assert timeline.set_index("kind").loc["reply", "text"] == "Hi Dan, refund issued"
    assert timeline["at"].notna().all()
    assert (case["status"], case["assignee"], case["reply_url"]) == ("replied", "bo", "https://x.com/i/1799")
    assert case["first_response_at"] is not None
    assert set(store.audit()["action"]) >= {"claim", "note", "reassign", "reply"}


def test_a_failed_reply_keeps_the_case_claimed_with_the_error(store):
    add(store, post(1))
    case_id = int(store.queue().iloc[0]["id"])
    store.reply_failed(case_id, "ana", "Hi Dan", "403 Forbidden: You are not allowed to reply")
    case = store.queue().iloc[0]
    assert (case["status"], case["assignee"]) == ("claimed", "ana")
    assert "403" in case["last_error"] and store.case(case_id)["first_response_at"] is None


def test_dismissed_cases_keep_their_reason_and_unknown_reasons_are_refused(store):
    add(store, post(1), post(2, author="@bot"))
    spam = int(store.queue().set_index("author").loc["@bot", "id"])
    with pytest.raises(ValueError, match="spam, irrelevant, duplicate"):
        store.dismiss(spam, "ana", "boring")
    store.dismiss(spam, "ana", "spam")
    assert store.case(spam)["dismiss_reason"] == "spam" and len(store.queue()) == 1


def test_snoozed_cases_come_back_when_their_time_comes(store):
    add(store, post(1))
    case_id = int(store.queue().iloc[0]["id"])
    until = datetime.now(timezone.utc) + timedelta(hours=3)
    store.snooze(case_id, "ana", until)
    assert store.queue().empty
    assert len(store.queue(now=(until + timedelta(minutes=1)).replace(tzinfo=None))) == 1


def test_bulk_actions_report_what_could_not_be_done(store):
    add(store, *[post(i, author=f"@u{i}") for i in range(4)])
    ids = store.queue()["id"].astype(int).tolist()
    store.claim(ids[0], "bo")
    result = store.bulk("claim", ids, "ana")
    assert result[ids[0]] == f"queue item {ids[0]} is already claimed by bo"
    assert all(result[i] is None for i in ids[1:])
    assert store.bulk("dismiss", ids[1:], "ana", reason="duplicate") == {i: None for i in ids[1:]}


def test_filters_match_the_dashboard_filters(store):
    add(store, post(1, author="@a"), post(2, author="@b"))
    store.claim(int(store.queue().iloc[0]["id"]), "ana")
    assert len(store.queue(assignee="ana")) == 1 and len(store.queue(assignee="")) == 1
    assert len(store.queue(source="twitter", lang="en", intent="complaint")) == 2
    assert store.queue(source="reddit").empty and store.queue(category="safety").empty


def test_twenty_agents_taking_the_next_case_never_take_the_same_one(store, backend_db):
    add(store, *[post(i, author=f"@u{i}") for i in range(120)])
    taken: dict[str, list[int]] = {}

    def agent(name):
        own = Store(backend_db)
        mine = taken.setdefault(name, [])
        while (case_id := own.claim_next(name)) is not None:
            mine.append(case_id)
            own.resolve(case_id, name)

    threads = [threading.Thread(target=agent, args=(f"agent{i}",)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    claims = [c for cases in taken.values() for c in cases]
    assert len(claims) == len(set(claims)) == 120               # no double claim, nothing lost
    assert store.queue().empty


def test_priority_bands_and_working_hours_set_the_due_times(store):
    queue = queue_rules("  timezone: Europe/Paris\n"
                        "  working_hours: {days: [mon, tue, wed, thu, fri], start: '08:00', end: '20:00'}\n"
                        "  bands:\n"
                        "    - {name: urgent, min_priority: 70, first_response: 30m, resolution: 4h}\n"
                        "    - {name: normal, min_priority: 0, first_response: 2h}\n")
    friday_evening = datetime(2026, 11, 20, 18, 30, tzinfo=timezone.utc)   # 19:30 in Paris
    urgent, normal = post(1, at=friday_evening), post(2, author="@eve", at=friday_evening)
    store.save_mentions([urgent, normal])
    store.save_labels([labels(urgent, 90), labels(normal, 20)], queue)
    cases = store.queue().set_index("author")
    assert cases.loc["@dan", "band"] == "urgent" and cases.loc["@eve", "band"] == "normal"
    # 30 min from Friday 19:30 with 30 min left that day → Friday 20:00 local (19:00 UTC)
    assert cases.loc["@dan", "due_at"] == datetime(2026, 11, 20, 19, 0)
    # 2 h: 30 min on Friday, 90 min from Monday 08:00 local → Monday 09:30 local (08:30 UTC)
    assert cases.loc["@eve", "due_at"] == datetime(2026, 11, 23, 8, 30)
    # resolution: the band's 4 h, else queue.resolution_sla (1 d of working time)
    assert cases.loc["@dan", "resolve_due_at"] == datetime(2026, 11, 23, 10, 30)


def test_the_sla_clock_counts_working_time_only():
    paris = Calendar(tz="Europe/Paris", days=("mon", "tue", "wed", "thu", "fri"),
                     start=datetime(2000, 1, 1, 8).time(), end=datetime(2000, 1, 1, 20).time())
    saturday = datetime(2026, 11, 21, 12, 0)
    assert add_working_time(saturday, timedelta(hours=1), paris) == datetime(2026, 11, 23, 8, 0)  # Mon 09:00 Paris
    assert working_time_between(datetime(2026, 11, 20, 18, 0), datetime(2026, 11, 23, 8, 0), paris) == timedelta(hours=2)
    due = datetime(2026, 11, 23, 8, 0)
    assert sla_state(due, datetime(2026, 11, 23, 7, 50), paris, timedelta(minutes=15)) == ("due_soon", "SLA in 10 min")
    # on Saturday the clock is stopped: one working hour is left, however long the weekend
    assert sla_state(due, datetime(2026, 11, 21, 9, 0), paris, timedelta(minutes=15)) == ("ok", "SLA in 1 h 00")
    assert sla_state(due, datetime(2026, 11, 23, 10, 5), paris, timedelta(minutes=15)) == ("breached", "SLA breached 2 h 05 ago")
    assert humanise(timedelta(days=2, hours=4)) == "2 d 4 h"


def test_bad_working_hours_and_time_zones_are_named_with_their_line():
    from pipeline.rules import RulesError

    with pytest.raises(RulesError, match=r"rules.yaml:6 queue.timezone: unknown time zone 'Europe/Pariss'"):
        queue_rules("  first_response_sla: 1h\n  timezone: Europe/Pariss\n")
    with pytest.raises(RulesError, match=r"queue.working_hours: .*'end' \(08:00\) must be after 'start' \(20:00\)"):
        queue_rules("  working_hours: {start: '20:00', end: '08:00'}\n")


def test_an_old_store_gets_cases_for_its_queue_items(tmp_path):
    """A store written before cases existed keeps its queue: each item becomes a one-post case."""
    import sqlalchemy as sa

    import pipeline.store as S

    db = tmp_path / "old.db"
    store = Store(str(db))
    add(store, post(1))
    with store.engine.begin() as conn:   # undo 0005: as if the store predates it
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE name = '0005_cases'"))
        conn.execute(S.case_mentions.delete())
        conn.execute(S.queue_items.update().values(case_key=None))
    migrated = Store(str(db))
    case = migrated.queue().iloc[0]
    assert (case["case_key"], case["mentions"]) == ("twitter:1", 1)


def test_twenty_agents_working_for_a_minute_never_double_claim_or_lose_a_case(backend_db):
    """The issue's load test: 20 concurrent agents claim, reply and resolve for 60 s (`ecoute bench queue`)."""
    from pipeline.bench.bench_queue import run

    report = run(backend_db, open_items=20_000, agents=20, seconds=60, echo=lambda line: None)
    assert report["claims"] > 100 and report["errors"] == 0
    assert report["double_claims"] == 0 and report["lost"] == 0

import threading
from datetime import datetime, timezone

import pytest

from pipeline.mention import Labels, Mention
from pipeline.store import QueueConflict, Store


@pytest.fixture
def db(backend_db):
    """Every storage test runs on SQLite and, with ECOUTE_TEST_PG, on PostgreSQL."""
    return backend_db


def mention(i: int, **extra) -> Mention:
    return Mention(source="twitter", source_id=str(i), text=f"post {i}",
                   created_at=datetime(2026, 11, 1, 12, i % 60, tzinfo=timezone.utc), **extra)


def labels(m: Mention, needs_response=True, priority=50) -> Labels:
    return Labels(mention_key=m.key, lang="en", relevant=True, brands=("Aerolia",), sentiment="negative",
                  sentiment_score=0.9, complaint=True, complaint_score=0.9, intent="complaint",
                  needs_response=needs_response, priority=priority, reasons=("complaint 0.90",), model="test")


def test_saving_the_same_mention_twice_stores_it_once(store):
    assert store.save_mentions([mention(1), mention(2)]) == 2
    assert store.save_mentions([mention(1), mention(2).replace(text="edited")]) == 0
    rows = store.mention_rows()
    assert len(rows) == 2 and rows.set_index("source_id").loc["2", "text"] == "edited"


def test_a_crash_mid_batch_keeps_what_was_committed(store):
    store.save_mentions([mention(1)])
    with pytest.raises(RuntimeError):
        with store.engine.begin() as conn:
            store.save_mentions([mention(2)], conn=conn)
            raise RuntimeError("killed mid-batch")
    assert list(store.mention_rows()["source_id"]) == ["1"]


def test_queue_is_ordered_by_priority_and_a_rerun_keeps_claims(store):
    ms = [mention(i) for i in range(3)]
    store.save_mentions(ms)
    assert store.save_labels([labels(ms[0], priority=10), labels(ms[1], priority=90),
                              labels(ms[2], needs_response=False)], sla=3600) == 2
    queue = store.queue()
    assert list(queue["key"]) == [ms[1].key, ms[0].key]
    store.claim(int(queue.iloc[0]["id"]), "ana")
    assert store.save_labels([labels(ms[1], priority=95)], sla=3600) == 0
    top = store.queue().iloc[0]
    assert (top["status"], top["assignee"]) == ("claimed", "ana")
    assert top["due_at"] == datetime(2026, 11, 1, 13, 1)


def test_two_agents_claiming_at_once_one_wins_and_the_other_is_told_who(tmp_path):
    db = str(tmp_path / "race.db")
    store = Store(db)
    m = mention(1)
    store.save_mentions([m])
    store.save_labels([labels(m)], sla=60)
    item = int(store.queue().iloc[0]["id"])
    results = {}
    barrier = threading.Barrier(2)

    def claim(agent):
        own = Store(db)
        barrier.wait()
        try:
            own.claim(item, agent)
            results[agent] = "won"
        except QueueConflict as exc:
            results[agent] = str(exc)

    threads = [threading.Thread(target=claim, args=(a,)) for a in ("ana", "bo")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winner = next(a for a, r in results.items() if r == "won")
    loser = next(a for a in results if a != winner)
    assert results[loser] == f"queue item {item} is already claimed by {winner}"
    actions = store.audit()
    assert list(actions["action"]) == ["claim"] and list(actions["actor"]) == [winner]


def test_resolve_closes_an_item_and_is_audited(store):
    m = mention(1)
    store.save_mentions([m])
    store.save_labels([labels(m)], sla=60)
    item = int(store.queue().iloc[0]["id"])
    store.resolve(item, "ana", note="refund sent")
    assert store.queue().empty
    with pytest.raises(QueueConflict, match="not open"):
        store.resolve(item, "bo")
    assert store.audit().iloc[0]["detail"] == '{"note": "refund sent"}'


def test_a_page_and_its_cursor_commit_together(store):
    store.save_page("news", [mention(1)], {"etag": "abc"})
    assert store.get_cursor("news") == {"etag": "abc"} and store.count("mentions") == 1
    assert store.get_cursor("other") is None


def test_daily_trend_counts_sentiment_per_brand(store):
    ms = [mention(i) for i in range(4)]
    store.save_mentions(ms)
    store.save_labels([labels(m) for m in ms], sla=60)
    day = store.daily()
    assert day.iloc[0][["brand", "volume", "negative", "net_sentiment"]].tolist() == ["Aerolia", 4, 4, -1.0]

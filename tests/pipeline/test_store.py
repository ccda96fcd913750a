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


# -- deletions are permanent (issue 16) ---------------------------------------------------------

def queued(store, *ms):
    store.save_mentions(ms)
    store.save_labels([labels(m) for m in ms], sla=3600)


def test_purging_a_queued_mention_removes_its_case(store):
    a, b = mention(1, author="@dan"), mention(2, author="@eve")
    queued(store, a, b)
    store.claim(int(store.queue().set_index("key").loc[a.key, "id"]), "ana")
    assert store.mark_deleted(a.key, actor="cli", purge=True)
    assert list(store.queue()["key"]) == [b.key]
    assert store.count("case_mentions") == 1 and store.count("mentions") == 1


def test_purging_one_mention_of_a_case_keeps_the_case_for_the_others(store):
    first, second = mention(1, author="@dan", thread_id="t"), mention(2, author="@dan", thread_id="t")
    queued(store, first, second)
    assert len(store.queue()) == 1
    store.mark_deleted(second.key, actor="cli", purge=True)
    queue = store.queue()
    assert list(queue["key"]) == [first.key] and store.count("case_mentions") == 1


@pytest.mark.parametrize("purge", [False, True])
def test_a_deleted_mention_stays_deleted_when_it_comes_again(store, purge):
    m = mention(1)
    queued(store, m)
    store.mark_deleted(m.key, actor="cli", purge=purge)
    saved = store.store_mentions([m.replace(text="post 1 fetched again"), mention(2)])
    assert (saved.new, saved.deleted) == (1, 1)
    rows = store.mention_rows().set_index("key")
    if purge:
        assert m.key not in rows.index
    else:
        assert rows.loc[m.key, "text"] == "" and rows.loc[m.key, "deleted_at"] is not None
    assert store.save_page("x", [m], None).deleted == 1
    assert store.tombstone_counts() == {"purged" if purge else "deleted": 1}


def test_a_deleted_mention_keeps_no_quote_of_its_text_in_its_reasons(store):
    m = mention(1)
    store.save_mentions([m])
    store.save_labels([labels(m).__class__(**{**labels(m).__dict__, "reasons": ('accusation: "they lie"',)})],
                      sla=3600)
    store.mark_deleted(m.key, actor="cli")
    assert store.mention_rows().set_index("key").loc[m.key, "reasons"] == []


def test_a_store_error_never_repeats_the_post_text(store):
    import sqlalchemy as sa

    import pipeline.store as S

    row = S._mention_row(Mention("twitter", "1", "secret words"))
    with pytest.raises(sa.exc.IntegrityError) as caught:
        with store.engine.begin() as conn:   # one key twice: the refused statement carries post text
            conn.execute(S.mentions.insert(), [row, row])
    assert "secret words" not in str(caught.value) and "hidden" in str(caught.value)


def test_a_queue_brand_filter_is_a_name_never_a_pattern(store):
    m = mention(1)
    queued(store, m)                                       # labelled Aerolia
    assert list(store.queue(brand="Aerolia")["key"]) == [m.key]
    assert store.queue(brand="A_rolia").empty and store.queue(brand="%").empty
    assert store.claim_next("ana", brand="Aer%") is None

"""The customer, not only the thread: an author's history across threads and sources, linked handles,
and erasure that follows the link. Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.desk.customers import HandleError, customer_history, link_handles, unlink_handle
from pipeline.mention import Labels, Mention
from pipeline.desk.privacy import erase
from pipeline.store import Store, person_links

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def post(i, author="@Dan", source="twitter", thread="t1", at=NOW, text=None) -> Mention:
    return Mention(source=source, source_id=str(i), text=text or f"my bag is lost ({i})", author=author,
                   thread_id=thread, created_at=at)


def add(store, *posts, sentiment="negative", intent="complaint") -> None:
    store.save_mentions(posts)
    store.save_labels([Labels(mention_key=p.key, lang="en", relevant=True, brands=("Aerolia",), sentiment=sentiment,
                              sentiment_score=0.9, complaint=intent == "complaint", complaint_score=0.9, intent=intent,
                              needs_response=True, priority=50, model="test") for p in posts], 3600)


def case_id(store, key) -> int:
    frame = store.queue(statuses=("new", "claimed", "replied", "resolved", "dismissed"))
    return int(frame.set_index("key").loc[key, "id"])


def test_the_authors_history_spans_threads_newest_first_with_counts(store):
    add(store, post(1, thread="t1", at=NOW - timedelta(days=40), text="lost bag in October"))
    add(store, post(2, thread="t2", at=NOW - timedelta(days=2), text="still no bag"))
    add(store, post(3, thread="t3", at=NOW - timedelta(hours=1), text="thanks, bag is back!"),
        sentiment="positive", intent="praise")
    add(store, post(4, author="@eve", thread="t2"))                                  # someone else
    store.resolve(case_id(store, "twitter:1"), "ana")
    history = customer_history(store, "twitter", "@dan", now=NOW)
    assert history["handles"] == ["twitter:dan"]
    assert history["mentions"]["text"].tolist() == ["thanks, bag is back!", "still no bag", "lost bag in October"]
    assert len(history["cases"]) == 3 and "twitter:eve:t2" not in set(history["cases"]["case_key"])
    assert history["counts"] == {"mentions": 3, "cases": 3, "complaints_this_month": 1, "open_cases": 2,
                                 "last_sentiment": "positive",
                                 "first_seen": (NOW - timedelta(days=40)).replace(tzinfo=None)}


def test_the_case_page_view_leaves_out_the_case_being_read(store):
    add(store, post(1, thread="t1"), post(2, thread="t2"))
    current = case_id(store, "twitter:2")
    history = customer_history(store, "twitter", "dan", exclude_case=current, now=NOW)
    assert history["mentions"]["key"].tolist() == ["twitter:1"]
    assert current not in set(history["cases"]["id"])
    assert history["counts"]["cases"] == 2                              # the counts are the customer's, all of them


def test_linking_two_handles_shows_both_sources_in_one_history_and_is_audited(store):
    add(store, post(1, thread="t1"))
    add(store, post(2, author="u/dan_b", source="reddit", thread="r1", at=NOW + timedelta(minutes=5)))
    assert customer_history(store, "twitter", "@dan")["counts"]["mentions"] == 1
    assert link_handles(store, "twitter:@Dan", "reddit:u/dan_b", actor="ana") == ["reddit:dan_b", "twitter:dan"]
    history = customer_history(store, "twitter", "@dan")
    assert history["mentions"]["source"].tolist() == ["reddit", "twitter"]
    assert customer_history(store, "reddit", "dan_b")["counts"]["mentions"] == 2     # from either side
    entry = store.audit().iloc[0]
    assert (entry["actor"], entry["action"]) == ("ana", "link_handles") and "reddit:dan_b" in entry["detail"]


def test_linking_merges_people_and_unlinking_leaves_the_rest_linked(store):
    link_handles(store, "twitter:dan", "reddit:dan_b", actor="ana")
    link_handles(store, "mastodon:dan@mastodon.social", "bluesky:dan.bsky.social", actor="bo")
    both = link_handles(store, "reddit:dan_b", "bluesky:dan.bsky.social", actor="ana")
    assert both == ["bluesky:dan.bsky.social", "mastodon:dan@mastodon.social", "reddit:dan_b", "twitter:dan"]
    assert unlink_handle(store, "twitter:dan", actor="ana") == ["bluesky:dan.bsky.social",
                                                                 "mastodon:dan@mastodon.social", "reddit:dan_b"]
    with store.engine.connect() as c:
        keys = set(c.scalars(sa.select(person_links.c.person)))
    assert keys and "twitter:dan" not in keys                           # the unlinked handle is no longer stored
    assert store.audit().iloc[0]["action"] == "unlink_handle"


def test_bad_handles_are_refused_with_the_expected_shape(store):
    with pytest.raises(HandleError, match="'source:author', such as 'twitter:dan'"):
        link_handles(store, "dan", "reddit:dan_b", actor="ana")
    with pytest.raises(HandleError, match="same handle"):
        link_handles(store, "twitter:@dan", "twitter:Dan", actor="ana")
    with pytest.raises(HandleError, match="not linked"):
        unlink_handle(store, "twitter:dan", actor="ana")


def test_erasing_one_handle_erases_every_handle_linked_to_it_and_the_links(store):
    add(store, post(1, thread="t1"))
    add(store, post(2, author="u/dan_b", source="reddit", thread="r1"))
    add(store, post(3, author="@eve", thread="t1"))
    link_handles(store, "twitter:dan", "reddit:dan_b", actor="ana")
    dry = erase(store, "@dan", source="twitter", dry_run=True)
    assert "would follow the link to 1 other handle of the same person: reddit:dan_b" in dry.line()
    removal = erase(store, "@dan", source="twitter", actor="dpo")
    assert removal.rows["mentions"] == 2 and removal.rows["person_links"] == 2
    assert "followed the link to 1 other handle of the same person: reddit:dan_b" in removal.line()
    assert customer_history(store, "reddit", "dan_b")["counts"]["mentions"] == 0
    assert customer_history(store, "twitter", "eve")["counts"]["mentions"] == 1
    with store.engine.connect() as c:
        audit = pd.read_sql(sa.select(sa.text("*")).select_from(sa.text("audit_log")), c)
    assert not audit["detail"].fillna("").str.contains("dan").any()      # the link's audit entry no longer names them

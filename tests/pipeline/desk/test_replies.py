"""Replies from the desk: real recorded X, Reddit and Mastodon answers replayed through `send_reply`,
the reply's id and link stored on the case; a refused reply keeps the case claimed with the error;
without credentials the desk replies by hand.

Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
import json
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

import pytest
import vcr

from pipeline.mention import Labels, Mention
from pipeline.desk.replies import REPLY_CREDENTIALS, can_post, send_reply
from pipeline.rules import Brand, Rules, Source
from pipeline.store import QueueConflict, Store
from tests.listeners.conftest import gunzip_bodies

HERE = Path(__file__).resolve().parent
TWEET = "1460323737035677698"
pytestmark = pytest.mark.usefixtures("no_network_sleep")


@pytest.fixture
def no_network_sleep(monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda seconds: None)   # prawcore waits between retries


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


@pytest.fixture
def bodies() -> list[str]:
    return []


@pytest.fixture
def replay(bodies):
    """Replay-only cassettes matched on method and path; each request body sent is kept in `bodies`."""
    def body_seen(r1, r2):
        bodies.append((r1.body or b"").decode() if isinstance(r1.body, bytes) else (r1.body or ""))
        return True

    def same_reply_target(r1, r2):   # the Mastodon cassette posts twice: a status, then the reply to it
        def target(r):
            return form(r.body.decode() if isinstance(r.body, bytes) else r.body or "").get("in_reply_to_id")
        assert target(r1) == target(r2)

    def use(path, **options):
        recorder = vcr.VCR(record_mode="none", match_on=["method", "path", "reply_target", "seen"], **options)
        recorder.register_matcher("seen", body_seen)
        recorder.register_matcher("reply_target", same_reply_target)
        return recorder.use_cassette(str(path))

    return use


@pytest.fixture
def shared_fixtures(shared):
    return shared / "fixtures"


def credentials(monkeypatch, platform):
    for var in REPLY_CREDENTIALS[platform]:
        monkeypatch.setenv(var, f"dummy-{var.lower()}")


def claimed_case(store, mention: Mention, agent="ana") -> int:
    store.save_mentions([mention])
    store.save_labels([Labels(mention_key=mention.key, lang="en", relevant=True, brands=("Aerolia",),
                              sentiment="negative", sentiment_score=0.9, complaint=True, complaint_score=0.9,
                              intent="complaint", needs_response=True, priority=60, model="test")], 3600)
    item_id = int(store.queue().iloc[0]["id"])
    store.claim(item_id, agent)
    return item_id


def tweet(source_id=TWEET) -> Mention:
    return Mention(source="twitter", source_id=source_id, text="@aerolia 4h delay and no news", author="@dan",
                   url=f"https://x.com/dan/status/{source_id}", created_at=datetime(2026, 11, 20, tzinfo=timezone.utc))


def form(body: str) -> dict:
    return dict(urllib.parse.parse_qsl(body))


# -- X ------------------------------------------------------------------------------------------

def test_a_reply_on_x_is_posted_in_reply_to_the_tweet_and_its_id_and_link_are_stored(
        store, shared_fixtures, replay, bodies, monkeypatch):
    credentials(monkeypatch, "twitter")
    item_id = claimed_case(store, tweet())
    cassette = shared_fixtures / "tweepy" / "test_client_create_and_delete_tweet.yaml"
    with replay(cassette, after_load_interaction=gunzip_bodies) as played:
        outcome = send_reply(store, item_id, "ana", "Hi @dan, sorry about the delay")
        assert played.play_count == 1
    assert json.loads(bodies[0]) == {"text": "Hi @dan, sorry about the delay", "reply": {"in_reply_to_tweet_id": TWEET}}
    assert (outcome.status, outcome.platform, outcome.error) == ("sent", "twitter", None)
    assert outcome.reply_id == "1456012973835788293"
    assert outcome.reply_url == "https://x.com/i/web/status/1456012973835788293"
    case = store.case(item_id)
    assert (case["status"], case["assignee"], case["reply_id"], case["reply_url"]) == (
        "replied", "ana", "1456012973835788293", "https://x.com/i/web/status/1456012973835788293")
    assert case["first_response_at"] is not None and case["last_error"] is None
    reply = case["timeline"].set_index("kind").loc["reply"]
    assert (reply["actor"], reply["text"]) == ("ana", "Hi @dan, sorry about the delay")


def test_a_refused_reply_on_x_keeps_the_case_claimed_with_the_error_then_a_retry_clears_it(
        store, shared_fixtures, replay, monkeypatch):
    credentials(monkeypatch, "twitter")
    item_id = claimed_case(store, tweet())
    with replay(HERE / "fixtures" / "replies" / "x_reply_forbidden.yaml") as played:
        outcome = send_reply(store, item_id, "ana", "Hi @dan, sorry about the delay")
        assert played.play_count == 1
    assert outcome.status == "failed" and not outcome.ok and outcome.reply_id is None
    assert outcome.error.startswith(f"X refused the reply to {TWEET} (403): Reply to this conversation is not allowed")
    assert "Read and Write permission" in outcome.error
    case = store.case(item_id)
    assert (case["status"], case["assignee"], case["reply_id"]) == ("claimed", "ana", None)
    assert case["last_error"] == outcome.error and case["first_response_at"] is None
    failed = case["timeline"].set_index("kind").loc["reply_failed"]
    assert failed["text"] == "Hi @dan, sorry about the delay" and "403" in failed["detail"]
    assert "dummy-twitter" not in json.dumps(store.audit().astype(str).to_dict("records"))

    with replay(shared_fixtures / "tweepy" / "test_client_create_and_delete_tweet.yaml",
                after_load_interaction=gunzip_bodies):
        assert send_reply(store, item_id, "ana", "Hi @dan, sorry about the delay").status == "sent"
    case = store.case(item_id)
    assert (case["status"], case["last_error"]) == ("replied", None)


# -- Reddit -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cassette, fullname, reply_id, link", [
    ("TestComment.test_reply.json", "t1_d1616q2", "t1_d1680wu", "https://www.reddit.com/comments/4b1tfm/_/d1680wu/"),
    ("TestSubmission.test_reply.json", "t3_4b1tfm", "t1_d162ara", "https://www.reddit.com/comments/4b1tfm/_/d162ara/"),
])
def test_a_reply_on_reddit_comments_under_the_comment_or_submission(
        store, shared_fixtures, replay, bodies, monkeypatch, cassette, fullname, reply_id, link):
    credentials(monkeypatch, "reddit")
    mention = Mention(source="reddit", source_id=fullname, text="aerolia lost my bag", author="u/dan",
                      url=f"https://www.reddit.com/r/redditdev/comments/4b1tfm/x/", thread_id="t3_4b1tfm")
    item_id = claimed_case(store, mention)
    with replay(shared_fixtures / "praw" / cassette, serializer="json") as played:
        outcome = send_reply(store, item_id, "ana", "Sorry to hear that")
        assert played.play_count == 2   # the password grant, then the comment
    token, comment = form(bodies[0]), form(bodies[-1])
    assert token["grant_type"] == "password" and token["username"] == "dummy-reddit_username"
    assert (comment["thing_id"], comment["text"]) == (fullname, "Sorry to hear that")
    assert (outcome.status, outcome.reply_id, outcome.reply_url) == ("sent", reply_id, link)
    case = store.case(item_id)
    assert (case["status"], case["reply_id"], case["reply_url"]) == ("replied", reply_id, link)


def test_a_reply_to_a_locked_reddit_thread_fails_with_reddits_reason(store, replay, monkeypatch):
    credentials(monkeypatch, "reddit")
    item_id = claimed_case(store, Mention(source="reddit", source_id="t1_d1616q2", text="aerolia lost my bag",
                                          author="u/dan", thread_id="t3_4b1tfm"))
    with replay(HERE / "fixtures" / "replies" / "reddit_reply_locked.json", serializer="json") as played:
        outcome = send_reply(store, item_id, "ana", "Sorry to hear that")
        assert played.play_count == 2
    assert outcome.error == "Reddit refused the reply to t1_d1616q2: THREAD_LOCKED: Comments are locked."
    case = store.case(item_id)
    assert (case["status"], case["assignee"], case["last_error"]) == ("claimed", "ana", outcome.error)


def test_an_error_the_listener_does_not_map_is_still_kept_on_the_case(store, monkeypatch):
    import pipeline.desk.replies as replies

    def broken(source, mention, text):
        raise RuntimeError("socket closed mid-answer")

    credentials(monkeypatch, "twitter")
    monkeypatch.setitem(replies.REPLIERS, "twitter", broken)
    item_id = claimed_case(store, tweet())
    outcome = send_reply(store, item_id, "ana", "Hi")
    assert outcome.error == "twitter reply failed: RuntimeError: socket closed mid-answer"
    assert store.case(item_id)["status"] == "claimed"


# -- Mastodon -----------------------------------------------------------------------------------

def test_a_reply_on_mastodon_goes_through_the_listener_on_the_sources_instance(
        store, shared_fixtures, replay, bodies, monkeypatch):
    credentials(monkeypatch, "mastodon")
    mention = Mention("mastodon", "localhost:3000/117020583245459824", "Toot, finally!",
                      author="@mastodonpy_test_2@localhost:3000",
                      raw={"id": "117020583245459824", "account": {"acct": "mastodonpy_test_2"}})
    item_id = claimed_case(store, mention)
    rules = Rules(brands=[Brand(name="Aerolia", keywords=["aerolia"])],
                  sources=[Source(name="fedi", type="mastodon", instance="http://localhost:3000", hashtags=["x"])])
    with replay(shared_fixtures / "mastodon" / "test_status_reply.yaml") as played:
        outcome = send_reply(store, item_id, "ana", "same!", rules=rules)
        assert played.play_count == 1
    assert form(bodies[0])["in_reply_to_id"] == "117020583245459824"
    assert (outcome.reply_id, outcome.reply_url) == ("localhost:3000/117020583258292382",
                                                     "http://localhost:3000/@admin/117020583258292382")
    assert store.case(item_id)["reply_url"] == outcome.reply_url


# -- by hand ------------------------------------------------------------------------------------

def test_without_credentials_the_desk_replies_by_hand_and_marks_the_case_replied(store, monkeypatch):
    for var in REPLY_CREDENTIALS["twitter"]:
        monkeypatch.delenv(var, raising=False)
    item_id = claimed_case(store, tweet())
    assert not can_post("twitter")
    outcome = send_reply(store, item_id, "ana", "Hi @dan")
    assert (outcome.status, outcome.post_url, outcome.reply_id) == ("manual", f"https://x.com/dan/status/{TWEET}", None)
    assert store.case(item_id)["status"] == "claimed"   # nothing is recorded until the agent says it is posted
    store.replied(item_id, "ana", "Hi @dan")
    case = store.case(item_id)
    assert (case["status"], case["reply_id"]) == ("replied", None) and case["first_response_at"] is not None


def test_rss_and_imported_mentions_are_always_answered_by_hand(store):
    item_id = claimed_case(store, Mention(source="rss", source_id="https://blog.example/p/1", text="aerolia review",
                                          url="https://blog.example/p/1"))
    assert not can_post("rss") and not can_post("file")
    assert send_reply(store, item_id, "ana", "Thanks for the review").status == "manual"


def test_can_post_needs_every_credential_of_the_platform(monkeypatch):
    for platform, variables in REPLY_CREDENTIALS.items():
        for var in variables:
            monkeypatch.delenv(var, raising=False)
        assert not can_post(platform)
        credentials(monkeypatch, platform)
        assert can_post(platform)
        monkeypatch.setenv(variables[-1], " ")
        assert not can_post(platform), platform
    assert set(REPLY_CREDENTIALS["reddit"]) == {"REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USERNAME",
                                                 "REDDIT_PASSWORD"}
    assert REPLY_CREDENTIALS["twitter"] == ("TWITTER_API_KEY", "TWITTER_API_SECRET", "TWITTER_ACCESS_TOKEN",
                                            "TWITTER_ACCESS_SECRET")


def test_a_closed_case_or_an_empty_reply_is_refused_before_anything_is_posted(store):
    item_id = claimed_case(store, tweet())
    with pytest.raises(ValueError, match="the reply is empty"):
        send_reply(store, item_id, "ana", "  ")
    store.resolve(item_id, "ana")
    with pytest.raises(QueueConflict, match=f"queue item {item_id} is resolved; reopen it before replying"):
        send_reply(store, item_id, "ana", "Hi")
    with pytest.raises(QueueConflict, match="queue item 999 does not exist"):
        send_reply(store, 999, "ana", "Hi")

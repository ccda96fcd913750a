"""`ecoute listen --once` end to end: a feed on 127.0.0.1 and real recorded X and Reddit answers
go through the CLI into the store, and a second run stores nothing new."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import Store
from tests.listeners.test_rss import ETAG, LAST_MODIFIED, server  # noqa: F401  (the feed server fixture)

pytestmark = pytest.mark.usefixtures("no_sleep")
BRANDS = "brands:\n  - {name: Aerolia, keywords: [aerolia]}\n"


def write_rules(tmp_path, source: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(BRANDS + "sources:\n  - " + source + "\n", encoding="utf-8")
    return str(path)


def listen_once(db: str, rules: str):
    result = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", rules])
    assert result.exit_code == 0, result.output
    return result


def test_listen_once_stores_a_local_feed_and_the_second_run_is_conditional(tmp_path, server):  # noqa: F811
    db = str(tmp_path / "listen.db")
    rules = write_rules(tmp_path, f"{{name: news, type: rss, url: 'http://127.0.0.1:{server.server_port}/feed.rss', "
                                  "interval: 15m, timeout: 5s}")
    first = listen_once(db, rules)
    stored = Store(db).count("mentions")
    assert stored > 0 and f"news: {stored} fetched, {stored} new" in first.output
    rows = Store(db).mention_rows()
    assert rows["text"].str.len().gt(0).all() and rows["url"].dropna().str.startswith("https://").all()

    second = listen_once(db, rules)
    assert Store(db).count("mentions") == stored and "news: 0 fetched, 0 new" in second.output
    _, headers = server.requests[-1]
    assert headers.get("If-None-Match") == ETAG and headers.get("If-Modified-Since") == LAST_MODIFIED


def test_listen_once_stores_the_recorded_x_search_once(tmp_path, shared_fixtures, tweepy_vcr, monkeypatch):
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", "dummy-bearer")
    db = str(tmp_path / "listen.db")
    rules = write_rules(tmp_path, "{name: x, type: twitter, query: Tweepy, interval: 5m, max_items: 10}")
    cassette = shared_fixtures / "tweepy" / "test_client_search_recent_tweets.yaml"
    match = ["method", "path", "search_query"]
    with tweepy_vcr.use_cassette(str(cassette), match_on=match, allow_playback_repeats=True):
        first = listen_once(db, rules)
        rows = Store(db).mention_rows()
        assert len(rows) == 10 and "x: 10 fetched, 10 new" in first.output
        assert rows["text"].str.contains("tweepy", case=False).all()
        assert rows["url"].str.startswith("https://x.com/").all()
        listen_once(db, rules)  # the same answer replayed: identity keys keep one copy of each
    assert Store(db).count("mentions") == 10


def test_listen_once_stores_the_recorded_reddit_search_once(tmp_path, shared_fixtures, praw_vcr, monkeypatch):
    for name, value in {"REDDIT_CLIENT_ID": "dummy-id", "REDDIT_CLIENT_SECRET": "dummy-secret",
                        "REDDIT_USER_AGENT": "ecoute tests"}.items():
        monkeypatch.setenv(name, value)
    db = str(tmp_path / "listen.db")
    rules = write_rules(tmp_path, "{name: reddit, type: reddit, subreddits: [all], query: praw oauth search, "
                                  "mode: search, interval: 10m}")
    cassette = shared_fixtures / "praw" / "TestSubreddit.test_search.json"
    with praw_vcr.use_cassette(str(cassette), match_on=["method", "path", "search_q"], allow_playback_repeats=True):
        first = listen_once(db, rules)
        rows = Store(db).mention_rows()
        assert len(rows) == 6 and "reddit: 6 fetched, 6 new" in first.output
        assert rows["author"].str.startswith("u/").all() and rows["created_at"].notna().all()
        assert rows["url"].str.startswith("https://www.reddit.com/r/").all()
        second = listen_once(db, rules)
    assert Store(db).count("mentions") == 6 and "reddit: 0 fetched, 0 new" in second.output


@pytest.mark.parametrize("where", ["missing feed", "closed port"])
def test_a_failing_feed_never_shows_its_password_or_token(tmp_path, server, where, caplog):  # noqa: F811
    secrets = ("hunter2-secret", "tok-9f8e7d6c5b4a")
    port = server.server_port if where == "missing feed" else 1   # nothing listens on port 1
    url = f"http://reader:{secrets[0]}@127.0.0.1:{port}/feed.rss?format=rss&token={secrets[1]}"
    db, rules = str(tmp_path / "listen.db"), write_rules(tmp_path, f"{{name: news, type: rss, url: '{url}'}}")
    listened = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", rules])
    health = Store(db).health()
    shown = CliRunner().invoke(main, ["sources", "--db", db, "--rules", rules])
    assert listened.exit_code == 1 and "news" in listened.output
    assert "127.0.0.1" in health.loc[0, "last_error"] and "last error" in shown.output
    for secret in secrets:
        for name, text in [("listen", listened.output), ("health", health.to_csv()), ("sources", shown.output),
                           ("log", caplog.text)]:
            assert secret not in text, (name, text)


def test_errors_stored_before_are_not_shown_with_their_password(tmp_path):
    db, rules = str(tmp_path / "listen.db"), write_rules(tmp_path, "{name: news, type: rss, url: 'https://h/f'}")
    store = Store(db)
    store.record_health("news", error="feed https://reader:hunter2@h/f?token=abcdef123 answered 500")
    assert "hunter2" not in store.health().loc[0, "last_error"]
    with store.engine.begin() as c:   # as an older version stored it
        c.exec_driver_sql("UPDATE source_health SET last_error = 'feed https://reader:hunter2@h/f?token=abc answered 500'")
    shown = CliRunner().invoke(main, ["sources", "--db", db, "--rules", rules]).output
    assert "hunter2" not in shown and "token=abc" not in shown and "feed https://h/f?token=… answered 500" in shown

"""The X listener: recorded recent-search answers replayed through `listen`, queries, cursors, errors."""
import json
import logging
import time
from datetime import datetime, timezone

import pytest

from listeners.base import ListenerError, RateLimited, Unavailable
from listeners.twitter import _cursor, _states, build_queries, listen
from pipeline.rules import Brand, Rules, Source

TOKEN = "dummy-bearer-AAAAtest"
T3, T2, T1 = "1578522901234567680", "1578521200000000000", "1578519800000000000"
pytestmark = pytest.mark.usefixtures("no_sleep")


def rules(*brands: Brand) -> Rules:
    return Rules(brands=list(brands) or [Brand(name="Aerolia", keywords=["aerolia", "aerolia air", "@aerolia"])])


def source(**fields) -> Source:
    return Source(**{"name": "x", "type": "twitter", **fields})


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", TOKEN)


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


# -- build_queries -----------------------------------------------------------------------------

def test_build_queries_quotes_phrases_keeps_handles_and_tags_and_adds_exclusions():
    brand = Brand(name="Aerolia", keywords=["Aerolia", "aerolia air", "@aerolia", "#AeroliaFail", "e-bike"],
                  exclude=["aerolia pizza", "spam"])
    assert build_queries(rules(brand)) == [
        '(Aerolia OR "aerolia air" OR @aerolia OR #AeroliaFail OR "e-bike") -"aerolia pizza" -spam -is:retweet']


def test_build_queries_splits_long_keyword_lists_under_the_limit_without_losing_any():
    keywords = [f"destination number {i:03d}" for i in range(120)]
    brand = Brand(name="Aerolia", keywords=keywords, exclude=["aerolia pizza"])
    queries = build_queries(rules(brand))
    assert len(queries) > 1
    assert all(len(q) <= 512 for q in queries)
    assert all(q.startswith("(") and q.endswith(') -"aerolia pizza" -is:retweet') for q in queries)
    found = [t for q in queries for t in q[1:q.index(")")].split(" OR ")]
    assert found == [f'"{k}"' for k in keywords]
    assert len(build_queries(rules(brand), limit=100)) > len(queries)
    assert all(len(q) <= 100 for q in build_queries(rules(brand), limit=100))


def test_build_queries_keeps_each_brands_exclusions_to_its_own_keywords():
    aerolia = Brand(name="Aerolia", keywords=["aerolia"], exclude=["aerolia pizza"])
    lumelle = Brand(name="Lumelle", keywords=["lumelle"])
    skyra = Brand(name="Skyra", keywords=["skyra", "Aerolia"])
    assert build_queries(rules(aerolia, lumelle, skyra)) == [
        '(aerolia) -"aerolia pizza" -is:retweet', "(lumelle OR skyra OR Aerolia) -is:retweet"]


def test_build_queries_refuses_exclusions_that_leave_no_room():
    brand = Brand(name="Aerolia", keywords=["aerolia"], exclude=[f"phrase {i}" for i in range(60)])
    with pytest.raises(ValueError, match="512-character"):
        build_queries(rules(brand))


def test_a_flat_cursor_seeds_every_query_when_the_keywords_grow_into_several():
    states = _states({"since_id": T1}, ["q1", "q2"])
    assert states == {"q1": {"since_id": T1}, "q2": {"since_id": T1}}
    states["q1"] = {"since_id": T3}
    assert _cursor(states) == {"queries": {"q1": {"since_id": T3}, "q2": {"since_id": T1}}}
    assert _states(_cursor(states), ["q1", "q2"]) == states
    # keywords shrink back to one query: it starts from the oldest since_id, never skipping
    assert _states(_cursor(states), ["q3"]) == {"q3": {"since_id": T1}}


# -- replaying the shared recording ------------------------------------------------------------

def test_shared_recent_search_for_tweepy_becomes_mentions(shared_fixtures, tweepy_vcr, sent, token):
    cassette_path = shared_fixtures / "tweepy" / "test_client_search_recent_tweets.yaml"
    # recorded with only ?query=Tweepy: match on the path and the query text, check the rest below
    with tweepy_vcr.use_cassette(str(cassette_path), match_on=["sent", "method", "path", "search_query"]) as cassette:
        pages = list(listen(source(query="Tweepy", max_items=10), None, rules()))
    assert cassette.play_count == 1
    params = sent[0]
    assert params["query"] == "Tweepy" and params["max_results"] == "10" and "since_id" not in params
    assert params["expansions"] == "author_id" and "public_metrics" in params["tweet.fields"]
    [page] = pages
    mentions = page.mentions
    assert len(mentions) == 10
    first = mentions[0]
    assert first.source == "twitter" and first.source_id == "1578516068309794817"
    assert first.text == "2022-10-07 22:42:12.637103 tweepy"
    # the recording asked for no fields or expansions: no author, so the author-free status URL
    assert first.url == "https://x.com/i/web/status/1578516068309794817"
    assert first.author is None and first.author_followers is None and first.created_at is None
    assert mentions[-1].source_id == "1578511538419212288"
    assert all("tweepy" in m.text.lower() for m in mentions)
    # stopped by max_items with a next_token left: the cursor resumes below the oldest, since_id waits
    assert page.cursor == {"until_id": "1578511538419212288", "newest_id": "1578516068309794817"}


# -- replaying our Aerolia recordings ----------------------------------------------------------

def test_a_sweep_yields_a_page_per_api_page_and_commits_since_id_only_at_the_end(own_fixtures, tweepy_vcr, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_recent_tweets.yaml")) as cassette:
        first, second = list(listen(source(), None, rules()))
    assert cassette.play_count == 2 and cassette.all_played

    assert [m.source_id for m in first.mentions] == [T3, T2]
    mira = first.mentions[0]
    assert mira.author == "@mira_voyage" and mira.author_followers == 412
    assert mira.author_created_at == utc(2015, 3, 12, 9, 14)
    assert mira.created_at == utc(2022, 10, 7, 23, 9, 1)
    assert mira.url == f"https://x.com/mira_voyage/status/{T3}"
    assert mira.text.startswith("@aerolia my flight AE212 from Lyon has been delayed")
    assert mira.lang == "en" and mira.thread_id == T3 and mira.parent_id is None
    assert mira.raw["author"]["username"] == "mira_voyage" and mira.raw["public_metrics"]["like_count"] == 4
    json.dumps(mira.raw)  # tweepy objects stay inside the listener
    assert first.mentions[1].author == "@jonas_flies" and first.mentions[1].author_followers == 1873
    # mid-sweep: older tweets are still to come, so since_id must not move yet
    assert first.cursor == {"until_id": T2, "newest_id": T3}

    [claire] = second.mentions
    assert claire.source_id == T1 and claire.author == "@claire_b_travel" and claire.lang == "fr"
    assert claire.parent_id == "1578519000000000000" and claire.thread_id == "1578519000000000000"
    assert claire.created_at == utc(2022, 10, 7, 22, 56, 41)
    assert second.cursor == {"since_id": T3}


def test_the_next_run_sends_since_id_from_the_cursor(own_fixtures, tweepy_vcr, sent, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_since_id.yaml")) as cassette:
        pages = list(listen(source(), {"since_id": T3}, rules()))
    assert cassette.play_count == 1
    assert sent[0]["since_id"] == T3
    assert [m for p in pages for m in p.mentions] == []
    assert pages[-1].cursor == {"since_id": T3}


def test_a_run_killed_mid_sweep_resumes_below_the_last_page_and_loses_nothing(own_fixtures, tweepy_vcr, sent, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_recent_tweets.yaml")):
        first_page = next(iter(listen(source(), None, rules())))  # then the process dies
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_until_id.yaml")) as cassette:
        pages = list(listen(source(), first_page.cursor, rules()))
    assert cassette.play_count == 1
    params = sent[-1]  # the resumed run's request
    assert params["until_id"] == T2 and "since_id" not in params
    stored = [m.source_id for m in first_page.mentions] + [m.source_id for p in pages for m in p.mentions]
    assert stored == [T3, T2, T1]
    assert pages[-1].cursor == {"since_id": T3}


def test_max_items_stops_mid_page_and_the_cursor_keeps_the_rest_for_later(own_fixtures, tweepy_vcr, sent, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_recent_tweets.yaml"),
                                 match_on=["sent", "method", "path", "search_query"]) as cassette:
        pages = list(listen(source(max_items=1), None, rules()))
    assert cassette.play_count == 1
    assert sent[0]["max_results"] == "10"  # X's minimum
    [page] = pages
    assert [m.source_id for m in page.mentions] == [T3]
    assert page.cursor == {"until_id": T3, "newest_id": T3}


def test_the_bearer_token_never_reaches_the_logs(own_fixtures, tweepy_vcr, token, caplog):
    caplog.set_level(logging.DEBUG)
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_recent_tweets.yaml")) as cassette:
        list(listen(source(), None, rules()))
    assert cassette.play_count == 2
    assert "Bearer <redacted>" in caplog.text  # tweepy did log its headers
    assert TOKEN not in caplog.text


# -- errors --------------------------------------------------------------------------------------

def test_429_is_rate_limited_until_x_rate_limit_reset(own_fixtures, tweepy_vcr, token, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1665183229.0 - 229)
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_429.yaml")) as cassette:
        with pytest.raises(RateLimited) as caught:
            list(listen(source(), None, rules()))
    assert cassette.play_count == 1
    assert caught.value.retry_after == 229.0
    assert "429" in str(caught.value) and "'x'" in str(caught.value)


def test_503_is_unavailable(own_fixtures, tweepy_vcr, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_503.yaml")) as cassette:
        with pytest.raises(Unavailable) as caught:
            list(listen(source(), None, rules()))
    assert cassette.play_count == 1
    assert not isinstance(caught.value, RateLimited)
    assert "X answered 503" in str(caught.value)


def test_401_is_a_listener_error_that_says_what_to_fix(own_fixtures, tweepy_vcr, token):
    with tweepy_vcr.use_cassette(str(own_fixtures / "tweepy" / "aerolia_search_401.yaml")) as cassette:
        with pytest.raises(ListenerError) as caught:
            list(listen(source(), None, rules()))
    assert cassette.play_count == 1
    assert not isinstance(caught.value, Unavailable)
    assert "TWITTER_BEARER_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)


def test_a_missing_token_names_the_variable(monkeypatch):
    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)
    with pytest.raises(ListenerError) as caught:
        list(listen(source(), None, rules()))
    assert str(caught.value) == ("source 'x': TWITTER_BEARER_TOKEN is not set; create a bearer token in the "
                                 "X developer portal and export it")

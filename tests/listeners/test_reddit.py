"""The Reddit listener: recorded praw answers replayed through `listen`, filtering, cursors, errors."""
import json
from datetime import datetime, timezone

import praw
import pytest

import listeners.reddit as reddit_listener
from listeners.base import ListenerError, RateLimited, Unavailable
from listeners.reddit import listen
from pipeline.rules import Brand, Rules, Source

pytestmark = pytest.mark.usefixtures("no_sleep")
AEROLIA = Brand(name="Aerolia", keywords=["aerolia", "aerolia air"])


def rules(*keywords: str) -> Rules:
    return Rules(brands=[Brand(name="Brand", keywords=list(keywords))] if keywords else [AEROLIA])


def source(subreddits, mode="search", **fields) -> Source:
    return Source(name="r", type="reddit", subreddits=subreddits, mode=mode, **fields)


def a_reddit() -> praw.Reddit:
    return praw.Reddit(client_id="dummy-id", client_secret="dummy-secret", user_agent="ecoute tests",
                       check_for_updates=False)


def replay(recorder, path, src, the_rules, cursor=None, **options):
    """Pages of one listen over a cassette, and the cassette (for its play count)."""
    with recorder.use_cassette(str(path), **options) as cassette:
        pages = list(listen(src, cursor, the_rules, reddit=a_reddit()))
    return pages, cassette


def mentions_of(pages):
    return [m for page in pages for m in page.mentions]


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


# -- the shared recordings ---------------------------------------------------------------------

def test_shared_search_becomes_mentions_and_a_second_run_adds_none(shared_fixtures, praw_vcr, sent):
    path = shared_fixtures / "praw" / "TestSubreddit.test_search.json"
    src = source(["all"], query="praw oauth search", max_items=100)
    # recorded by praw 4 with other parameters (sort=relevance, limit=1024): match path and q
    match = ["sent", "method", "path", "search_q"]
    pages, cassette = replay(praw_vcr, path, src, rules("unused"), match_on=match)
    assert cassette.play_count == 2  # token, then the search
    assert {"q": "praw oauth search", "sort": "new", "restrict_sr": "False"}.items() <= sent[-1].items()

    mentions = mentions_of(pages)
    assert len(mentions) == 6
    assert [m.created_at for m in mentions] == sorted(m.created_at for m in mentions)  # oldest first
    solved = next(m for m in mentions if m.source_id == "t3_3gpbiu")
    assert solved.source == "reddit" and solved.author == "u/dClauzel" and solved.author_followers is None
    assert solved.title == "[PRAW][OAuth2Util] Problem using get_banned() : raise Forbidden(_raw=response)"
    assert solved.text.startswith("# solved\n\nProblem solved with this:")
    # search results carry ?ref=search_posts on their permalink; the mention keeps the canonical URL
    assert solved.url == ("https://www.reddit.com/r/redditdev/comments/3gpbiu/"
                          "prawoauth2util_problem_using_get_banned_raise/")
    assert solved.created_at == utc(1439370514) and solved.thread_id == "t3_3gpbiu" and solved.parent_id is None
    assert solved.raw["subreddit"] == "redditdev" and solved.raw["score"] == 0
    json.dumps([m.raw for m in mentions])  # praw objects stay inside the listener
    cursor = pages[-1].cursor
    assert sorted(cursor["seen"]) == sorted(m.source_id for m in mentions)
    assert cursor["newest_utc"] == max(m.created_at for m in mentions).timestamp()

    again, cassette = replay(praw_vcr, path, src, rules("unused"), cursor, match_on=match)
    assert cassette.play_count == 2
    assert mentions_of(again) == []


LISTINGS = [
    # cassette, subreddit, mode, brand keyword, mentions expected, (one of them: id, author, url or thread)
    ("TestSubredditListings.test_new", "askreddit", "submissions", "reddit", 9,
     ("t3_48fbm9", "u/RedHeadQc",
      "https://www.reddit.com/r/AskReddit/comments/48fbm9/serious_parents_of_reddit_whats_the_biggest_lie/")),
    ("TestSubredditStreams.test_submissions", "all", "submissions", "trump", 5,
     ("t3_5jo11f", "u/toastedmale",
      "https://www.reddit.com/r/The_Donald/comments/5jo11f/i_just_found_out_dean_cain_voted_trump_can_we_get/")),
    ("TestSubredditListings.test_comments", "askreddit", "comments", "reddit", 3,
     ("t1_d4y8amt", "u/BenderIsGreat64", "https://www.reddit.com/comments/4r1zqd/_/d4y8amt/")),
    ("TestSubredditStreams.test_comments", "all", "comments", "game", 3,
     ("t1_dbhn10e", "u/RGM89D", "https://www.reddit.com/comments/5jjlsl/_/dbhn10e/")),
]


@pytest.mark.parametrize("name, subreddit, mode, keyword, expected, sample", LISTINGS, ids=[c[0] for c in LISTINGS])
def test_shared_listings_keep_only_brand_mentions_and_resume_without_duplicates(
        shared_fixtures, praw_vcr, sent, name, subreddit, mode, keyword, expected, sample):
    path = shared_fixtures / "praw" / f"{name}.json"
    src = source([subreddit], mode, max_items=100)
    pages, cassette = replay(praw_vcr, path, src, rules(keyword))
    assert cassette.play_count == 2
    assert sent[-1] == {"limit": "100", "raw_json": "1"}

    mentions = mentions_of(pages)
    assert len(mentions) == expected
    assert all(keyword in f"{m.title or ''} {m.text}".lower() for m in mentions)
    assert [m.created_at for m in mentions] == sorted(m.created_at for m in mentions)
    sample_id, author, url = sample
    found = next(m for m in mentions if m.source_id == sample_id)
    assert found.author == author and found.url == url
    if mode == "comments":
        assert found.title is None and found.parent_id.startswith(("t1_", "t3_"))
        assert found.thread_id.startswith("t3_") and found.thread_id[3:] in url
    else:
        assert found.title and found.thread_id == found.source_id and found.parent_id is None
    assert set(pages[-1].cursor["seen"]) == {m.source_id for m in mentions}

    # the next run reads the same listing again (nothing newer was recorded): nothing comes twice
    again, cassette = replay(praw_vcr, path, src, rules(keyword), pages[-1].cursor)
    assert cassette.play_count == 2
    assert mentions_of(again) == []


# -- our Aerolia recordings --------------------------------------------------------------------

def test_search_builds_its_query_from_the_brand_keywords(own_fixtures, praw_vcr, sent):
    pages, cassette = replay(praw_vcr, own_fixtures / "praw" / "aerolia_search.json",
                             source(["travel", "aviation"]), rules())
    assert cassette.play_count == 2 and cassette.all_played
    assert sent[-1]["q"] == 'aerolia OR "aerolia air"' and sent[-1]["sort"] == "new"
    link, bag = mentions_of(pages)
    assert link.source_id == "t3_5jq1zz" and link.author == "u/jonas_flies"
    assert link.text == link.title == "Aerolia Air takes delivery of its first A220"  # a link post: no selftext
    assert link.url == "https://www.reddit.com/r/aviation/comments/5jq1zz/aerolia_air_takes_delivery_of_its_first_a220/"
    assert link.raw["link_url"] == "https://example.org/news/aerolia-a220" and link.raw["num_comments"] == 12
    assert bag.source_id == "t3_5jq2aa" and bag.created_at == utc(1482400800)
    assert bag.title == "Aerolia lost my bag in Lisbon, any tips?"
    assert bag.text.startswith("Flew Aerolia AE87 Paris to Lisbon on Tuesday")
    assert pages[-1].cursor == {"seen": ["t3_5jq1zz", "t3_5jq2aa"], "newest_utc": 1482400800.0}


def test_new_submissions_filter_by_brand_and_handle_deleted_authors_and_removed_text(own_fixtures, praw_vcr):
    path = own_fixtures / "praw" / "aerolia_new.json"
    src = source(["travel"], "submissions")
    pages, cassette = replay(praw_vcr, path, src, rules())
    assert cassette.play_count == 2
    cancelled, fare = mentions_of(pages)  # "Best time of year to visit Porto?" names no brand
    assert cancelled.source_id == "t3_5jq3aa" and cancelled.author == "u/claire_b_travel"
    assert cancelled.text == cancelled.title == "Aérolia cancelled my Nantes flight with 2 hours notice"  # [removed]
    assert fare.source_id == "t3_5jq3bb" and fare.author is None  # the account was deleted
    assert fare.text == "No seat choice and only a small bag. For a two hour flight it seems fine?"
    # newest_utc covers the Porto post too: it was read, it just is not a mention
    assert pages[-1].cursor == {"seen": ["t3_5jq3aa", "t3_5jq3bb"], "newest_utc": 1482404400.0}

    again, cassette = replay(praw_vcr, path, src, rules(), pages[-1].cursor)
    assert cassette.play_count == 2 and mentions_of(again) == []


def test_new_comments_become_mentions_with_their_thread(own_fixtures, praw_vcr):
    pages, cassette = replay(praw_vcr, own_fixtures / "praw" / "aerolia_comments.json",
                             source(["travel"], "comments"), rules())
    assert cassette.play_count == 2
    claim, same = mentions_of(pages)
    assert claim.source_id == "t1_dbhq0a1" and claim.author == "u/jonas_flies" and claim.title is None
    assert claim.text == "File the claim on the Aerolia website, not at the desk; they answer those within a week."
    assert claim.parent_id == "t3_5jq2aa" and claim.thread_id == "t3_5jq2aa"
    assert claim.url == "https://www.reddit.com/comments/5jq2aa/_/dbhq0a1/"
    assert claim.created_at == utc(1482404900) and claim.raw["link_title"].startswith("Aerolia lost my bag")
    assert same.source_id == "t1_dbhq0b2" and same.author is None and same.parent_id == "t1_dbhpzz9"


def test_a_run_killed_after_its_first_page_resumes_without_loss_or_duplicates(own_fixtures, praw_vcr, monkeypatch):
    monkeypatch.setattr(reddit_listener, "PAGE_SIZE", 1)
    path = own_fixtures / "praw" / "aerolia_comments.json"
    src = source(["travel"], "comments")
    with praw_vcr.use_cassette(str(path)) as cassette:
        first = next(iter(listen(src, None, rules(), reddit=a_reddit())))  # then the process dies
    assert cassette.play_count == 2
    assert [m.source_id for m in first.mentions] == ["t1_dbhq0a1"]  # pages run oldest first
    assert first.cursor == {"seen": ["t1_dbhq0a1"], "newest_utc": 1482404900.0}
    rest, _ = replay(praw_vcr, path, src, rules(), first.cursor)
    assert [m.source_id for m in mentions_of(rest)] == ["t1_dbhq0b2"]


# -- errors --------------------------------------------------------------------------------------

def test_429_is_rate_limited_for_the_seconds_reddit_says(own_fixtures, praw_vcr):
    with praw_vcr.use_cassette(str(own_fixtures / "praw" / "aerolia_new_429.json")) as cassette:
        with pytest.raises(RateLimited) as caught:
            list(listen(source(["travel"], "submissions"), None, rules(), reddit=a_reddit()))
    assert cassette.play_count == 2  # token, then the 429: prawcore does not retry it
    assert caught.value.retry_after == 369.0  # Reddit's x-ratelimit-reset counts seconds, not an epoch
    assert "429" in str(caught.value) and "'r'" in str(caught.value)


def test_503_is_unavailable_after_prawcores_own_retries(own_fixtures, praw_vcr, no_sleep):
    path = own_fixtures / "praw" / "aerolia_new_503.json"
    with praw_vcr.use_cassette(str(path)) as cassette:
        with pytest.raises(Unavailable) as caught:
            list(listen(source(["travel"], "submissions"), None, rules(), reddit=a_reddit()))
    assert cassette.play_count == 4  # token, then three tries
    assert len(no_sleep) >= 2  # prawcore waited between them (patched: no real wait)
    assert not isinstance(caught.value, RateLimited)
    assert "Reddit answered 503" in str(caught.value)


def test_missing_credentials_name_the_variables_and_praw_ini(monkeypatch, tmp_path):
    for name in ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT",
                 "praw_client_id", "praw_client_secret", "praw_user_agent", "praw_site"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no praw.ini here, nor in this config home
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)
    with pytest.raises(ListenerError) as caught:
        list(listen(source(["travel"]), None, rules()))
    message = str(caught.value)
    assert not isinstance(caught.value, Unavailable)
    assert message.startswith("source 'r': Reddit client_id is missing")
    assert all(name in message for name in ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT",
                                            "praw.ini"))

"""The Mastodon listener: Mastodon.py's real recordings (../shared/fixtures/mastodon) and our Aerolia
cassettes replayed through `listen`, `reply` and `ecoute listen --once`; HTML to text; errors."""
from __future__ import annotations

import urllib.parse
from datetime import datetime, timezone

import pytest
import vcr
from mastodon import Mastodon

from listeners.base import ListenerError, RateLimited, Unavailable
from listeners.mastodon import Reply, feeds, html_text, listen, reply
from pipeline.mention import Mention
from pipeline.rules import Brand, Rules, Source
from pipeline.store import Store
from tests.listeners.conftest import query_param
from tests.listeners.test_listen_command import listen_once

pytestmark = pytest.mark.usefixtures("no_sleep")
HOOT = "117020593741189701"


def rules(*brands: Brand) -> Rules:
    return Rules(brands=list(brands) or [Brand(name="Aerolia", keywords=["aerolia"], exclude=["aerolia pizza"])])


def source(**fields) -> Source:
    return Source(**{"name": "fedi", "type": "mastodon", "instance": "http://localhost:3000", **fields})


@pytest.fixture
def tokens() -> list[str | None]:
    """The Authorization header of each request sent."""
    return []


@pytest.fixture
def mastodon_vcr(sent, tokens) -> vcr.VCR:
    """Replay-only; records each request's path and query parameters in `sent`."""
    def record(r1, r2):
        params = dict(r1.query)
        if (r1.path, params) not in sent:
            sent.append((r1.path, params))
        tokens.append(r1.headers.get("Authorization"))
        return True

    recorder = vcr.VCR(record_mode="none", match_on=["sent", "method", "host", "path"])
    recorder.register_matcher("sent", record)
    recorder.register_matcher("min_id", query_param("min_id"))
    recorder.register_matcher("type", query_param("type"))
    recorder.register_matcher("reply_form", _same_form("status", "in_reply_to_id"))
    return recorder


def _same_form(*names):
    def matcher(r1, r2):
        def form(r):
            return {k: v for k, v in urllib.parse.parse_qsl((r.body or b"").decode()) if k in names}
        assert form(r1) == form(r2), f"{form(r1)} != {form(r2)}"

    return matcher


# -- the real recordings ------------------------------------------------------------------------

def test_the_recorded_hashtag_timeline_becomes_one_plain_text_mention(shared_fixtures, mastodon_vcr, sent):
    cassette = shared_fixtures / "mastodon" / "test_hashtag_tl.yaml"
    with mastodon_vcr.use_cassette(str(cassette), allow_playback_repeats=True) as played:
        pages = list(listen(source(hashtags=["hoot"]), None, rules(Brand(name="Hoot", keywords=["hoot"]))))
        assert played.play_count >= 2  # the instance description, then the timeline
    [page] = pages
    [mention] = page.mentions
    assert mention == Mention(
        source="mastodon", source_id=f"localhost:3000/{HOOT}", text="#hoot (hashtag toot)",
        created_at=datetime(2026, 8, 1, 13, 55, 55, 867000, tzinfo=timezone.utc),
        url=f"http://localhost:3000/@mastodonpy_test_2/{HOOT}", author="@mastodonpy_test_2@localhost:3000",
        author_followers=0, author_created_at=datetime(2026, 8, 1, tzinfo=timezone.utc), lang="ja")
    assert mention.raw["id"] == HOOT and mention.raw["content"].startswith("<p>")
    assert page.cursor == {"since_id": {"#hoot": HOOT}}
    assert ("/api/v1/timelines/tag/hoot", {"limit": "40"}) in sent


def test_a_second_read_asks_after_the_cursor_and_drops_what_the_server_repeats(shared_fixtures, mastodon_vcr, sent):
    cassette = shared_fixtures / "mastodon" / "test_hashtag_tl.yaml"
    cursor = {"since_id": {"#hoot": HOOT}}
    with mastodon_vcr.use_cassette(str(cassette), allow_playback_repeats=True):
        assert list(listen(source(hashtags=["#hoot"]), cursor, rules(Brand(name="Hoot", keywords=["hoot"])))) == []
    assert ("/api/v1/timelines/tag/hoot", {"min_id": HOOT, "limit": "40"}) in sent


def test_the_recorded_status_search_sends_the_query_for_statuses(shared_fixtures, mastodon_vcr, sent):
    cassette = shared_fixtures / "mastodon" / "test_search.yaml"
    # recorded by a client told the server's version, so no version lookup was recorded either
    api = Mastodon(api_base_url="http://localhost:3000", access_token="dummy-token", mastodon_version="4.6.4",
                   version_check_mode="created")
    with mastodon_vcr.use_cassette(str(cassette), match_on=["sent", "method", "path", "type"]) as played:
        pages = list(listen(source(query="mastodonpy_test"), None, rules(), api=api))
        assert played.play_count == 1
    assert pages == []  # the recorded answer holds no status
    params = next(p for path, p in sent if path == "/api/v2/search")
    assert params["q"] == "mastodonpy_test" and params["type"] == "statuses" and "min_id" not in params


def test_reply_posts_in_reply_to_the_status_naming_its_author(shared_fixtures, mastodon_vcr, tokens, monkeypatch):
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "dummy-token")
    original = Mention("mastodon", "localhost:3000/117020583245459824", "Toot, finally!",
                       author="@mastodonpy_test_2@localhost:3000",
                       raw={"id": "117020583245459824", "account": {"acct": "mastodonpy_test_2"}})
    cassette = shared_fixtures / "mastodon" / "test_status_reply.yaml"
    with mastodon_vcr.use_cassette(str(cassette), match_on=["sent", "method", "path", "reply_form"]) as played:
        posted = reply(source(hashtags=["hoot"]), original, "same!")  # sent as "@mastodonpy_test_2 same!"
        assert played.play_count == 1
    assert set(tokens) == {"Bearer dummy-token"}
    assert posted == Reply("localhost:3000/117020583258292382", "http://localhost:3000/@admin/117020583258292382")


def test_listen_once_stores_the_recorded_hashtag_status_once_as_plain_text(tmp_path, shared_fixtures, mastodon_vcr):
    db = str(tmp_path / "listen.db")
    path = tmp_path / "rules.yaml"
    path.write_text("brands:\n  - {name: Hoot, keywords: [hoot]}\nsources:\n"
                    "  - {name: fedi, type: mastodon, instance: 'http://localhost:3000', hashtags: [hoot]}\n")
    cassette = shared_fixtures / "mastodon" / "test_hashtag_tl.yaml"
    with mastodon_vcr.use_cassette(str(cassette), allow_playback_repeats=True):
        first = listen_once(db, str(path))
        second = listen_once(db, str(path))
    assert "fedi: 1 fetched, 1 new" in first.output and "fedi: 0 fetched, 0 new" in second.output
    rows = Store(db).mention_rows()
    assert list(rows["key"]) == [f"mastodon:localhost:3000/{HOOT}"]
    assert list(rows["text"]) == ["#hoot (hashtag toot)"]
    assert Store(db).get_cursor("fedi") == {"since_id": {"#hoot": HOOT}}


# -- our Aerolia cassettes ----------------------------------------------------------------------

def test_pages_run_oldest_first_filter_by_brand_and_resume_after_each_page(own_fixtures, mastodon_vcr, sent):
    cassette = own_fixtures / "mastodon" / "aerolia_tag.yaml"
    with mastodon_vcr.use_cassette(str(cassette), match_on=["sent", "method", "path", "min_id"]):
        pages = list(listen(source(hashtags=["aerolia"]), None, rules()))
    assert [p.cursor for p in pages] == [{"since_id": {"#aerolia": "117020600000000003"}},
                                         {"since_id": {"#aerolia": "117020600000000005"}}]
    first, second = ([m.source_id.split("/")[1][-1] for m in p.mentions] for p in pages)
    assert first == ["1", "2"] and second == ["4", "5"]  # 3 speaks of "aerolia pizza", excluded
    flying, bag = pages[0].mentions
    assert flying.text == "Flying #aerolia tomorrow! Any tips?" and flying.title == "voyage"
    assert flying.author == "@marie@mastodon.example" and flying.lang == "fr"
    assert bag.text == ("@aerolia my bag never arrived, the form at https://aerolia.example/help/refunds/form "
                        "fails. Help? #aerolia")
    assert bag.parent_id == "localhost:3000/117020599999999999" and bag.author_followers == 341
    assert bag.author == "@traveller@localhost:3000" and bag.author_created_at.year == 2025
    assert [p.get("min_id") for path, p in sent if "tag/aerolia" in path] == [
        None, "117020600000000003", "117020600000000005"]


def test_max_items_stops_between_pages_and_the_next_run_goes_on(own_fixtures, mastodon_vcr):
    cassette = own_fixtures / "mastodon" / "aerolia_tag.yaml"
    with mastodon_vcr.use_cassette(str(cassette), match_on=["method", "path", "min_id"], allow_playback_repeats=True):
        limited = list(listen(source(hashtags=["aerolia"], max_items=3), None, rules()))
        rest = list(listen(source(hashtags=["aerolia"]), limited[-1].cursor, rules()))
    assert [len(p.mentions) for p in limited] == [2] and [len(p.mentions) for p in rest] == [2]


@pytest.mark.parametrize("name, error, message", [
    ("aerolia_tag_429.yaml", RateLimited, "Mastodon rate limit reached (429)"),
    ("aerolia_tag_503.yaml", Unavailable, "the instance answered 503"),
    ("aerolia_tag_401.yaml", ListenerError, "refused the access token (401); check MASTODON_ACCESS_TOKEN"),
])
def test_errors_name_the_source_and_instance_and_say_what_to_do(own_fixtures, mastodon_vcr, name, error, message):
    with mastodon_vcr.use_cassette(str(own_fixtures / "mastodon" / name)):
        with pytest.raises(error) as raised:
            list(listen(source(hashtags=["aerolia"]), None, rules()))
    assert type(raised.value) is error
    assert str(raised.value).startswith("source 'fedi' (http://localhost:3000, #aerolia): ") and message in str(raised.value)
    if error is RateLimited:  # x-ratelimit-reset is 14:00:00, the recorded Date 13:55:55
        assert raised.value.retry_after == pytest.approx(245, abs=5)


@pytest.mark.parametrize("follow, where", [({"hashtags": ["aerolia"]}, "#aerolia"),
                                           ({"query": "aerolia"}, "version lookup")])
def test_an_unreachable_instance_is_unavailable(follow, where):
    # a search first looks up the server's version, which Mastodon.py 2.3.3 retries without end on failure
    closed = source(instance="http://127.0.0.1:9", timeout="2s", **follow)
    with pytest.raises(Unavailable, match=rf"source 'fedi' \(http://127.0.0.1:9, {where}\): could not reach"):
        list(listen(closed, None, rules()))


# -- units --------------------------------------------------------------------------------------

def test_feeds_default_to_the_brands_one_word_keywords_as_hashtags():
    brands = rules(Brand(name="Aerolia", keywords=["Aerolia", "aerolia air", "#AeroliaFail"]))
    assert feeds(source(), brands) == ["#aerolia", "#aeroliafail"]
    assert feeds(source(hashtags=["#Hoot"], query="aerolia refund"), brands) == ["#hoot", "q:aerolia refund"]
    with pytest.raises(ListenerError, match="set its hashtags"):
        feeds(source(), rules(Brand(name="A", keywords=["aerolia air"])))


def test_html_text_keeps_links_mentions_and_tags_as_text_and_nothing_else():
    html = ('<p>Hi <span class="h-card"><a href="https://x.example/@bob" class="u-url mention">@<span>bob</span></a>'
            '</span> &amp; <a href="https://x.example/tags/Aerolia">#<span>Aerolia</span></a></p><p>see '
            '<a href="https://a.example/long/path"><span class="invisible">https://</span><span class="ellipsis">'
            'a.example/lo</span><span class="invisible">ng/path</span></a><br>bye<img src=x onerror=alert(1)>'
            '<script>alert(2)</script></p>')
    assert html_text(html) == "Hi @bob & #Aerolia see https://a.example/long/path bye"


def test_reply_without_a_token_says_what_to_set(monkeypatch):
    monkeypatch.delenv("MASTODON_ACCESS_TOKEN", raising=False)
    with pytest.raises(ListenerError, match="cannot reply on http://localhost:3000: MASTODON_ACCESS_TOKEN is not set"):
        reply(source(hashtags=["aerolia"]), Mention("mastodon", "localhost:3000/1", "hi"), "hello")


def test_the_token_is_sent_but_never_logged(own_fixtures, mastodon_vcr, tokens, monkeypatch, caplog):
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", "secret-token-123")
    caplog.set_level("DEBUG")
    with mastodon_vcr.use_cassette(str(own_fixtures / "mastodon" / "aerolia_tag_401.yaml")):
        with pytest.raises(ListenerError) as raised:
            list(listen(source(hashtags=["aerolia"]), None, rules()))
    assert tokens and set(tokens) == {"Bearer secret-token-123"}
    assert "secret-token-123" not in caplog.text and "secret-token-123" not in str(raised.value)

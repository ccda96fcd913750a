"""The RSS/Atom listener against a real HTTP server on 127.0.0.1, and feedparser's own corpus."""
from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import logging
import re
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest

from listeners import rss
from listeners.base import ListenerError, RateLimited, Unavailable
from pipeline.mention import Mention
from pipeline.rules import Source

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "feedparser"
CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "LICENSE") if CORPUS.is_dir() else []
ETAG = '"aerolia-v1"'
LAST_MODIFIED = "Tue, 03 Nov 2026 07:00:00 GMT"
UTC = timezone.utc


class FeedHandler(BaseHTTPRequestHandler):
    """One path per behaviour; every request's path and headers are kept in `server.requests`."""

    def log_message(self, *args):  # keep pytest's output readable
        pass

    def do_GET(self):
        self.server.requests.append((self.path, dict(self.headers)))
        getattr(self, "route_" + self.path.strip("/").replace(".", "_").replace("-", "_"), self.route_missing)()

    def reply(self, status, body=b"", **headers):
        self.send_response(status)
        headers.setdefault("Content_Length", str(len(body)))
        for name, value in headers.items():
            if value is not None:
                self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def feed(self, name, content_type="application/rss+xml; charset=utf-8", **headers):
        self.reply(200, (FIXTURES / name).read_bytes(), Content_Type=content_type, **headers)

    def route_feed_rss(self):
        if self.headers.get("If-None-Match") == ETAG or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            self.reply(304, ETag=ETAG)
        else:
            self.feed("aerolia.rss", ETag=ETAG, Last_Modified=LAST_MODIFIED)

    def route_atom(self):
        self.feed("aerolia.atom", "application/atom+xml")

    def route_illformed(self):
        self.feed("illformed.rss")

    def route_live(self):
        self.reply(200, self.server.live_body, Content_Type="application/rss+xml")

    def route_moved(self):
        self.reply(301, Location="/feed.rss")

    def route_found(self):
        self.reply(302, Location=f"http://127.0.0.1:{self.server.server_port}/atom")

    def route_gzip(self):
        body = gzip.compress((FIXTURES / "aerolia.rss").read_bytes())
        self.reply(200, body, Content_Type="application/rss+xml", Content_Encoding="gzip")

    def route_limited(self):
        self.reply(429, b"slow down", Retry_After="7")

    def route_flaky(self):
        self.server.flaky_calls += 1
        if self.server.flaky_calls == 1:
            self.reply(500, b"oops", Retry_After="3")
        else:
            self.feed("aerolia.rss")

    def route_slow(self):
        time.sleep(1.5)
        self.feed("aerolia.rss")

    def route_trickle(self):  # each byte comes well within the read timeout, the whole never does
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.end_headers()
        for _ in range(20):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.1)

    def route_huge_declared(self):
        self.reply(200, b"<rss>" + b" " * 5000 + b"</rss>", Content_Type="application/rss+xml")

    def route_huge_streamed(self):  # no Content-Length: the body ends when the connection closes
        self.reply(200, b"<rss>" + b" " * 5000 + b"</rss>", Content_Type="application/rss+xml", Content_Length=None)

    def route_missing(self):
        self.reply(404, b"no feed here", Content_Type="text/plain")


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    httpd.requests, httpd.flaky_calls, httpd.live_body = [], 0, b""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def source_for(server, path, **settings):
    url = f"http://127.0.0.1:{server.server_port}/{path}"
    return Source(name="news", type="rss", url=url, **{"timeout": 5, **settings})


def listen_once(source, cursor=None):
    pages = list(rss.listen(source, cursor))
    assert len(pages) == 1
    return pages[0]


def by_id(mentions):
    return {m.source_id: m for m in mentions}


# --- HTTP behaviour -------------------------------------------------------------------------------

def test_conditional_get_sends_the_stored_validators_and_a_304_yields_nothing_new(server):
    source = source_for(server, "feed.rss")
    first = listen_once(source)
    assert len(first.mentions) == 3
    assert first.cursor["etag"] == ETAG and first.cursor["modified"] == LAST_MODIFIED
    assert server.requests[0][1]["User-Agent"] == rss.USER_AGENT

    second = listen_once(source, json.loads(json.dumps(first.cursor)))  # the cursor survives JSON
    sent = server.requests[1][1]
    assert sent["If-None-Match"] == ETAG and sent["If-Modified-Since"] == LAST_MODIFIED
    assert second.mentions == [] and second.cursor == first.cursor


def test_429_is_rate_limited_with_the_servers_retry_after(server):
    source = source_for(server, "limited")
    with pytest.raises(RateLimited) as caught:
        listen_once(source)
    assert caught.value.retry_after == 7
    assert "source 'news'" in str(caught.value) and source.url in str(caught.value) and "429" in str(caught.value)


def test_a_500_is_unavailable_and_the_next_call_succeeds(server):
    source = source_for(server, "flaky")
    with pytest.raises(Unavailable) as caught:
        listen_once(source)
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.retry_after == 3 and f"feed {source.url} answered 500" in str(caught.value)
    assert len(listen_once(source).mentions) == 3


def test_a_server_slower_than_the_timeout_is_unavailable(server):
    source = source_for(server, "slow", timeout="0.5s")
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"source 'news': feed .*/slow timed out after 0.5s"):
        listen_once(source)
    assert time.monotonic() - started < 1.4


def test_a_server_trickling_past_the_timeout_is_unavailable(server):
    started = time.monotonic()
    with pytest.raises(Unavailable, match="timed out after 0.5s"):
        listen_once(source_for(server, "trickle", timeout="0.5s"))
    assert time.monotonic() - started < 1.4


def test_tls_to_a_plain_http_port_is_a_listener_error_not_a_wait(server):
    source = Source(name="news", type="rss", url=f"https://127.0.0.1:{server.server_port}/feed.rss", timeout=2)
    with pytest.raises(ListenerError, match="TLS handshake") as caught:
        listen_once(source)
    assert not isinstance(caught.value, Unavailable)


def test_a_refused_connection_is_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = Source(name="news", type="rss", url=f"http://127.0.0.1:{port}/feed", timeout=2)
    with pytest.raises(Unavailable, match="could not be reached"):
        listen_once(source)


@pytest.mark.parametrize("path, expected", [("moved", 3), ("found", 2)])
def test_redirects_are_followed(server, path, expected):
    page = listen_once(source_for(server, path))
    assert len(page.mentions) == expected
    assert server.requests[-1][0] in ("/feed.rss", "/atom")


def test_a_gzip_body_is_decoded_and_parsed(server):
    page = listen_once(source_for(server, "gzip"))
    assert "gzip" in server.requests[0][1]["Accept-Encoding"]
    assert sorted(by_id(page.mentions)) == sorted(by_id(listen_once(source_for(server, "feed.rss")).mentions))


def test_a_404_is_a_listener_error_naming_the_feed(server):
    source = source_for(server, "nope")
    with pytest.raises(ListenerError) as caught:
        listen_once(source)
    assert not isinstance(caught.value, Unavailable)
    assert str(caught.value) == f"source 'news': feed {source.url} answered 404 Not Found"


@pytest.mark.parametrize("path", ["huge-declared", "huge-streamed"])
def test_a_body_over_the_size_cap_is_refused(server, monkeypatch, path):
    monkeypatch.setattr(rss, "MAX_BYTES", 1000)
    source = source_for(server, path)
    with pytest.raises(ListenerError, match="over the 1,000-byte limit") as caught:
        listen_once(source)
    assert not isinstance(caught.value, Unavailable) and source.url in str(caught.value)


# --- Feed content ---------------------------------------------------------------------------------

def test_rss_items_become_plain_text_mentions(server):
    page = listen_once(source_for(server, "feed.rss"))
    delayed, lisbon, letters = page.mentions
    assert delayed.source == "rss" and delayed.source_id == "aerolia-2026-0001"  # the guid
    assert delayed.url == "https://news.example.org/2026/11/aerolia-ae12-delay"
    assert delayed.title == "Aerolia flight AE12 delayed six hours"
    assert delayed.author == "Maya Ortiz" and delayed.lang == "en"
    assert delayed.created_at == datetime(2026, 11, 2, 8, 30, tzinfo=UTC)  # +0200 in the feed
    assert delayed.text == "Passengers on Aerolia AE12 waited & waited. The airline says refunds are coming…"
    assert delayed.raw["tags"] == ["delays", "Aerolia"] and delayed.raw["guid"] == "aerolia-2026-0001"

    assert lisbon.source_id == lisbon.url == "https://news.example.org/2026/11/aerolia-lisbon"  # no guid: link
    assert lisbon.text == "Aerolia will fly to Lisbon from March." and lisbon.author == "Travel Desk Daily"
    assert lisbon.created_at == datetime(2026, 11, 3, 7, 0, tzinfo=UTC)

    summary = "Three readers wrote in about bags lost on Aerolia."  # neither guid nor link: a hash
    assert letters.source_id == hashlib.sha256(f"Readers on Aerolia's lost bags\n{summary}".encode()).hexdigest()
    assert letters.url is None and letters.created_at is None and letters.text == summary
    for mention in page.mentions:
        assert "<" not in mention.text and "alert" not in mention.text and "&amp;" not in mention.text
        json.dumps(mention.to_dict())  # raw is JSON-safe


def test_atom_entries_keep_language_authors_and_utc_dates(server):
    page = listen_once(source_for(server, "atom"))
    valise, parfait = page.mentions
    assert valise.source_id == "tag:carnet.example.fr,2026:billet-42"
    assert valise.url == f"http://127.0.0.1:{server.server_port}/billets/42"  # relative link resolved
    assert valise.title == "Aerolia perd ma valise" and valise.author == "Claire Dubois"
    assert valise.text == "Ma valise n'est jamais arrivée à Nice. Merci Aerolia !"  # &nbsp; collapses too
    assert valise.created_at == datetime(2026, 11, 3, 7, 15, tzinfo=UTC) and valise.lang == "fr"
    assert parfait.text == "Équipage aux petits soins." and parfait.author == "Le Carnet du Voyageur"
    assert parfait.created_at == datetime(2026, 11, 4, 18, 45, tzinfo=UTC)


def test_an_illformed_feed_is_logged_and_what_was_recovered_is_kept(server, caplog):
    source = source_for(server, "illformed")
    with caplog.at_level(logging.WARNING, logger="listeners.rss"):
        page = listen_once(source)
    assert [m.title for m in page.mentions] == ["Aerolia & the missing sandwich", "Aerolia lounge review"]
    assert page.mentions[0].text == "Lunch never came on Aerolia AE7."
    assert any(source.url in r.getMessage() and "ill-formed" in r.getMessage() for r in caplog.records)


def test_a_second_listen_with_the_cursor_yields_only_new_items(server):
    feed = (FIXTURES / "aerolia.rss").read_bytes()
    server.live_body = feed
    source = source_for(server, "live")
    first = listen_once(source)
    assert len(first.mentions) == 3 and first.cursor["etag"] is None
    assert listen_once(source, first.cursor).mentions == []

    extra = b"<item><title>Aerolia strike called off</title><guid>aerolia-2026-0009</guid></item>"
    server.live_body = feed.replace(b"<item>", extra + b"<item>", 1)
    third = listen_once(source, first.cursor)
    assert [m.source_id for m in third.mentions] == ["aerolia-2026-0009"]
    assert set(first.cursor["seen"]) < set(third.cursor["seen"])


def test_max_items_caps_a_page_and_the_rest_come_next_time(server):
    source = source_for(server, "feed.rss", max_items=2)
    first = listen_once(source)
    assert len(first.mentions) == 2 and first.cursor["etag"] is None  # so the next fetch is not a 304
    second = listen_once(source, first.cursor)
    assert len(second.mentions) == 1 and second.cursor["etag"] == ETAG
    assert {m.source_id for m in first.mentions + second.mentions} == set(second.cursor["seen"])


def test_the_seen_window_is_bounded_and_keeps_ids_still_in_the_feed(server, monkeypatch):
    monkeypatch.setattr(rss, "SEEN_LIMIT", 4)
    server.live_body = (FIXTURES / "aerolia.rss").read_bytes()
    old = ["gone-1", "gone-2", "gone-3", "aerolia-2026-0001"]
    page = listen_once(source_for(server, "live"), {"seen": old})
    assert len(page.mentions) == 2 and len(page.cursor["seen"]) == 4
    assert "aerolia-2026-0001" in page.cursor["seen"] and "gone-1" not in page.cursor["seen"]


def test_one_entry_that_fails_to_convert_is_skipped_with_a_warning(monkeypatch, caplog):
    convert = rss.entry_to_mention

    def fussy(entry, feed, url):
        if "Lisbon" in entry.get("title", ""):
            raise ValueError("unexpected shape")
        return convert(entry, feed, url)

    monkeypatch.setattr(rss, "entry_to_mention", fussy)
    with caplog.at_level(logging.WARNING, logger="listeners.rss"):
        mentions, bozo = rss.parse_feed((FIXTURES / "aerolia.rss").read_bytes(), "https://news.example.org/feed")
    assert not bozo and len(mentions) == 2
    assert "skipped entry 2 (ValueError: unexpected shape)" in caplog.text


def test_html_to_text_never_keeps_markup():
    html = '<div>Hi<br/>there <script>evil()</script><style>p{}</style><img src=x onerror=y>&eacute;t&#233;</div>'
    assert rss.html_to_text(html) == "Hi there été"
    assert rss.html_to_text("  plain \n\t text ") == "plain text"


# --- feedparser's corpus --------------------------------------------------------------------------

@functools.cache
def corpus_case(path: Path) -> tuple[list[Mention], bool, list, str]:
    """(mentions, bozo, feedparser's own entries, the file's Expect line) for one corpus file."""
    body = path.read_bytes()
    head = body[:2000].decode("latin-1")
    headers = dict(re.findall(r"^Header:\s*([\w-]+):\s*(.*?)\s*$", head, re.M))
    if headers and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/xml"  # a served feed has one; without it feedparser cries bozo
    expect = (re.findall(r"^Expect:\s*(.*?)\s*$", head, re.M) or [""])[0]
    mentions, bozo = rss.parse_feed(body, "http://example.com/feed.xml", headers)
    entries = feedparser.parse(io.BytesIO(body), response_headers={k.lower(): v for k, v in headers.items()}).entries
    return mentions, bozo, entries, expect


def test_the_feedparser_corpus_is_present():
    if not CORPUS_FILES:
        pytest.skip(f"{CORPUS} is absent")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_file_parses_without_raising(path):
    mentions, bozo, entries, expect = corpus_case(path)
    if expect.startswith(("bozo", "not bozo")):  # our headers reach feedparser as its own tests send them
        assert bozo == expect.startswith("bozo")
    assert len(mentions) <= len(entries)
    titled = {rss.html_to_text(e.get("title") or "") for e in entries} - {""}
    assert titled <= {m.title for m in mentions}  # every recovered entry with a title comes out
    for mention in mentions:
        assert mention.source == "rss" and mention.source_id.strip()
        assert isinstance(mention.text, str) and "<script" not in mention.text.lower()
        assert mention.created_at is None or mention.created_at.tzinfo == UTC
        assert mention.lang is None or re.fullmatch("[a-z]{2}", mention.lang)
        json.dumps(mention.to_dict())


def test_the_corpus_yields_a_good_number_of_mentions():
    if not CORPUS_FILES:
        pytest.skip(f"{CORPUS} is absent")
    results = [corpus_case(path) for path in CORPUS_FILES]
    assert sum(len(mentions) for mentions, *_ in results) > 300
    # ill-formed feeds still give what was recovered (entries with only a link have nothing to read)
    readable = [mentions for mentions, bozo, entries, _ in results
                if bozo and any(e.get("title") or e.get("summary") for e in entries)]
    assert len(readable) >= 10 and all(readable)


@pytest.mark.parametrize("declared, lang", [("en-GB", "en"), ("PT_br", "pt"), ("fre", None), ("x-klingon", None),
                                             ("", None)])
def test_language_is_the_two_letter_primary_tag(declared, lang):
    body = (f"<rss version='2.0'><channel><language>{declared}</language>"
            "<item><title>Aerolia</title></item></channel></rss>").encode()
    (mention,), _ = rss.parse_feed(body, "https://news.example.org/feed")
    assert mention.lang == lang

"""The RSS/Atom listener: one feed URL, fetched politely, parsed by feedparser, as Mentions.

The bytes come from `requests` (timeout, User-Agent, redirects, a size cap, conditional GET with
the stored ETag / Last-Modified); feedparser only ever sees `io.BytesIO(body)`, never a URL.
feedparser does not raise on bad XML: it sets `bozo` and returns what it recovered, and we keep
that. One entry that cannot be converted is skipped with a warning; the rest of the feed goes on.

The cursor is `{"etag", "modified", "seen"}`: `seen` holds the last ids taken, because feeds
repeat their items on every fetch. Entry text is always plain text: summaries are HTML, and
whatever tags feedparser's sanitiser lets through are dropped here.
"""
from __future__ import annotations

import calendar
import hashlib
import io
import logging
import re
import time
import urllib.parse
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Iterator, Mapping

import feedparser
import requests
import urllib3

from pipeline.mention import Mention
from pipeline.desk.redaction import redact, shown_url

from .base import ListenerError, Page, RateLimited, Unavailable, retry_after_seconds

log = logging.getLogger(__name__)

USER_AGENT = "Ecoute/0.1 (+https://github.com/ecoute)"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
MAX_BYTES = 10 * 1024 * 1024
SEEN_LIMIT = 500
_CHUNK = 64 * 1024
_BLOCK_TAGS = set("address article blockquote br dd div dl dt figcaption h1 h2 h3 h4 h5 h6 hr img li ol p "
                  "pre section table td th tr ul".split())  # tags that separate words
_LANG = re.compile(r"\s*([A-Za-z]{2})(?:[-_]|\s*$)")


def listen(source, cursor: dict | None, rules=None) -> Iterator[Page]:
    """One Page: the feed's entries not seen before (at most `source.max_items`) and the new cursor."""
    cursor = dict(cursor or {})
    fetched = fetch(source, cursor)
    if fetched is None:  # 304 Not Modified
        yield Page([], cursor)
        return
    body, headers = fetched
    mentions, _ = parse_feed(body, shown_url(source.url), headers)   # the feed's credentials stay out of mentions and logs
    yield _new_page(source, cursor, mentions, headers)


def _new_page(source, cursor: dict, mentions: list[Mention], headers: Mapping[str, str]) -> Page:
    seen = list(cursor.get("seen") or [])
    known = set(seen)
    fresh = list({m.source_id: m for m in mentions if m.source_id not in known}.values())
    taken = fresh[: source.max_items]
    taken_ids = {m.source_id for m in taken}
    # ids still in the feed go last, so a long-lived item is never pushed out of the window
    in_feed = list(dict.fromkeys(m.source_id for m in mentions if m.source_id in known or m.source_id in taken_ids))
    kept = [i for i in seen if i not in set(in_feed)] + in_feed
    complete = len(taken) == len(fresh)
    new_cursor = {
        # when max_items cut the page short, the next fetch must not be answered 304
        "etag": headers.get("etag") if complete else None,
        "modified": headers.get("last-modified") if complete else None,
        "seen": kept[-SEEN_LIMIT:],
    }
    return Page(taken, new_cursor)


def fetch(source, cursor: Mapping[str, Any]) -> tuple[bytes, dict[str, str]] | None:
    """(body, lower-cased headers) of the feed, or None when the server answers 304."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if cursor.get("etag"):
        headers["If-None-Match"] = cursor["etag"]
    if cursor.get("modified"):
        headers["If-Modified-Since"] = cursor["modified"]
    where = f"source '{source.name}': feed {shown_url(source.url)}"   # errors are printed, stored and logged
    timeout = source.timeout.total_seconds()
    try:
        with requests.get(source.url, headers=headers, timeout=timeout, stream=True) as response:
            _check_status(response, where)
            if response.status_code == 304:
                return None
            body = _read_capped(response, where, time.monotonic() + timeout)
            return body, {k.lower(): v for k, v in response.headers.items()}
    except requests.Timeout:
        raise Unavailable(f"{where} timed out after {timeout:g}s") from None
    except requests.exceptions.SSLError as exc:  # a certificate or TLS mismatch: waiting will not fix it
        raise ListenerError(f"{where} failed its TLS handshake: {redact(str(exc), source.url)}") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise Unavailable(f"{where} could not be reached: {redact(str(exc), source.url)}") from None
    except requests.RequestException as exc:
        raise ListenerError(f"{where} failed: {type(exc).__name__}: {redact(str(exc), source.url)}") from None


def _check_status(response: requests.Response, where: str) -> None:
    status = response.status_code
    if status < 300 or status == 304:
        return
    message = f"{where} answered {status} {response.reason or ''}".rstrip()
    if response.history:
        message += f" (redirected to {redact(response.url)})"
    if status == 429:
        raise RateLimited(message, retry_after_seconds(response.headers))
    if status >= 500:
        raise Unavailable(message, retry_after_seconds(response.headers))
    raise ListenerError(message)


def _read_capped(response: requests.Response, where: str, deadline: float) -> bytes:
    """The decoded body, refusing more than MAX_BYTES and a server that trickles past the timeout."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise ListenerError(f"{where} is {int(declared):,} bytes, over the {MAX_BYTES:,}-byte limit")
    body = bytearray()
    for chunk in _chunks(response):
        body += chunk
        if len(body) > MAX_BYTES:
            raise ListenerError(f"{where} is over the {MAX_BYTES:,}-byte limit; stopped reading")
        if time.monotonic() > deadline:
            raise requests.Timeout()
    return bytes(body)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """Decoded body chunks as they arrive; iter_content would wait for a full chunk from a trickle."""
    read1 = getattr(response.raw, "read1", None)  # urllib3 >= 2
    if read1 is None:
        yield from response.iter_content(_CHUNK)
        return
    try:  # the same translations requests' iter_content makes
        while chunk := read1(_CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.Timeout(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError) as exc:
        raise requests.ConnectionError(exc) from None


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> tuple[list[Mention], bool]:
    """The Mentions in a feed's bytes, and whether feedparser found it ill-formed (bozo)."""
    feed_headers = {k.lower(): v for k, v in (headers or {}).items()}
    # requests already decoded gzip and the length no longer matches; feedparser needs neither
    feed_headers.pop("content-encoding", None)
    feed_headers.pop("content-length", None)
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=feed_headers)
    except Exception as exc:  # feedparser promises not to raise; if it ever does, one feed fails, not the run
        log.warning("feed %s could not be parsed (%s: %s)", url, type(exc).__name__, exc)
        return [], True
    bozo = bool(parsed.get("bozo"))
    if bozo:
        problem = parsed.get("bozo_exception")
        log.warning("feed %s is ill-formed (%s: %s); keeping the %d entries recovered",
                    url, type(problem).__name__, problem, len(parsed.get("entries") or []))
    return _mentions(parsed, url), bozo


def _mentions(parsed: Mapping[str, Any], url: str) -> list[Mention]:
    feed = parsed.get("feed") or {}
    mentions = []
    for number, entry in enumerate(parsed.get("entries") or [], start=1):
        try:
            mention = entry_to_mention(entry, feed, url)
        except Exception as exc:  # one odd entry is skipped; the rest of the feed still counts
            log.warning("feed %s: skipped entry %d (%s: %s)", url, number, type(exc).__name__, exc)
            continue
        if mention is not None:
            mentions.append(mention)
    return mentions


def entry_to_mention(entry: Mapping[str, Any], feed: Mapping[str, Any], url: str) -> Mention | None:
    """A Mention for one feedparser entry; None when it has neither a title nor any text."""
    title = html_to_text(entry.get("title") or "")
    text = html_to_text(_body_html(entry))
    if not title and not text:
        return None
    link = _link(entry, url)
    return Mention(
        source="rss",
        source_id=_entry_id(entry, link),
        text=text,
        created_at=_entry_time(entry),
        url=link,
        author=html_to_text(entry.get("author") or feed.get("title") or "") or None,
        title=title or None,
        lang=_language(entry, feed),
        raw=_raw(entry, url, link),
    )


def _link(entry: Mapping[str, Any], url: str) -> str | None:
    # relative links are resolved here rather than by giving feedparser a Content-Location: it would
    # also turn a guid such as "aerolia-2026-0009" (RSS guids default to isPermaLink) into a URL,
    # and an id must not change when the feed's address does
    link = (entry.get("link") or "").strip()
    return urllib.parse.urljoin(url, link) if link else None


def _body_html(entry: Mapping[str, Any]) -> str:
    """The fullest text an entry has: its content, else its summary."""
    for content in entry.get("content") or []:
        if content.get("value"):
            return content["value"]
    return entry.get("summary") or ""


def _entry_id(entry: Mapping[str, Any], link: str | None) -> str:
    guid = (entry.get("id") or "").strip()
    if guid or link:
        return guid or link
    seed = f"{entry.get('title') or ''}\n{entry.get('summary') or ''}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(name)
        if value:
            try:  # feedparser's *_parsed are UTC struct_times
                return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
            except (OverflowError, OSError, ValueError, TypeError):
                continue
    return None


def _language(entry: Mapping[str, Any], feed: Mapping[str, Any]) -> str | None:
    """'en-US' -> 'en'; a tag whose primary part is not two letters ('fre', 'x-klingon') -> None."""
    details = (entry.get("content") or [])[:1] + [entry.get("summary_detail"), entry.get("title_detail")]
    tag = next((d["language"] for d in details if d and d.get("language")), feed.get("language") or "")
    match = _LANG.match(tag)
    return match.group(1).lower() if match else None


def _raw(entry: Mapping[str, Any], url: str, link: str | None) -> dict[str, Any]:
    tags = [str(tag.get("term")) for tag in entry.get("tags") or [] if tag.get("term")]
    return {"feed": url, "guid": entry.get("id"), "link": link, "title": entry.get("title"),
            "published": entry.get("published") or entry.get("updated"), "tags": tags}


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; drops tags, scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._tag(tag, 1)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)

    def _tag(self, tag: str, step: int) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden + step)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags gone, entities decoded, whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:
        return " ".join(fragment.split())
    extractor = _TextExtractor()
    extractor.feed(fragment)
    extractor.close()
    return " ".join("".join(extractor.parts).split())

"""The Bluesky listener: the public Jetstream firehose over a websocket, filtered locally by keyword.

Jetstream (`source.url`, default the public `wss://jetstream2.us-east.bsky.network/subscribe`)
serves every public post as JSON without a key; we ask only for `app.bsky.feed.post` and keep the
posts that name a brand (one precompiled regex over all keywords, then the brands' exclusions).

Cursor: `{"time_us": …, "recent": [[time_us, uri], …]}`. Every connection asks for
`cursor=time_us - REWIND_US`: Jetstream replays from there, and the few seconds read twice are
absorbed by `recent` (posts already taken near the cursor) and by the `at://` identity. A page is
committed every second or so, with mentions or not, so a restart never replays much.
`delete` commits become `Page.deleted` keys; the runner marks those mentions deleted.

A cycle reads until the stream has been idle for `source.idle`, until it has caught up with the
moment it started (a first run, with no cursor, reads `idle` seconds of live posts), or until
`max_items` matches. A dropped connection reconnects with backoff from the last committed cursor.

Author handles come from identity events and, lazily and cached, from the public AppView through
the atproto SDK (`source.profiles: false` turns that off); a failing lookup only leaves the DID.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import unicodedata
import urllib.parse
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect as ws_connect

from pipeline.mention import Mention, parse_time
from pipeline.desk.redaction import redact, shown_url
from pipeline.text import mentioned_brands

from .base import Backoff, ListenerError, Page, Unavailable

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
COLLECTION = "app.bsky.feed.post"
PROFILE_API = "https://public.api.bsky.app"
HANDLE_VARIABLE, PASSWORD_VARIABLE = "BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"
REWIND_US = 3_000_000        # Jetstream's advice: resume a few seconds early, gapless
PAGE_SECONDS, PAGE_SIZE = 1.0, 100
MAX_RECONNECTS = 5
AUTHORS_KEPT = 50_000
LOOKUP_PAUSE_S = 300.0       # after a failed profile lookup, leave the AppView alone this long

Profiles = Callable[[list[str]], dict[str, dict[str, Any]]]


class Reply(NamedTuple):
    id: str
    url: str | None


# -- matching -----------------------------------------------------------------------------------

def fold(text: str) -> str:
    """As pipeline.text folds: lower case, accents dropped (ASCII text takes the fast path)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class KeywordFilter:
    """One regex over every brand keyword screens a post; only a hit pays for the per-brand exclusions."""

    def __init__(self, brands):
        self.brands = list(brands)
        words = sorted({fold(k.strip()) for b in self.brands for k in b.keywords if k.strip()}, key=len, reverse=True)
        self.any = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)") if words else None

    def __call__(self, text: str) -> list[str]:
        if self.any is None or not self.any.search(fold(text)):
            return []
        return mentioned_brands(text, self.brands)


# -- authors ------------------------------------------------------------------------------------

def public_profiles(dids: list[str], timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """Handle, followers and creation date of up to 25 DIDs from the public AppView (no login)."""
    from atproto import Client
    from atproto_client.request import Request

    client = Client(PROFILE_API, request=Request(timeout=timeout))
    found = client.get_profiles(dids[:25]).profiles
    return {p.did: {"handle": p.handle, "followers": p.followers_count, "created_at": p.created_at} for p in found}


class Authors:
    """DID → handle/followers, from identity events and lazy profile lookups, kept in a bounded cache."""

    def __init__(self, lookup: Profiles | None, clock: Callable[[], float] = time.monotonic):
        self.lookup, self.clock = lookup, clock
        self.known: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.paused_until = 0.0

    def remember(self, did: str, **fields: Any) -> None:
        self.known[did] = {**self.known.pop(did, {}), **{k: v for k, v in fields.items() if v is not None}}
        while len(self.known) > AUTHORS_KEPT:
            self.known.popitem(last=False)

    def describe(self, mentions: list[Mention]) -> list[Mention]:
        self._look_up([m.raw["did"] for m in mentions if "followers" not in self.known.get(m.raw["did"], {})])
        return [self._with_author(m) for m in mentions]

    def _look_up(self, dids: list[str]) -> None:
        dids = list(dict.fromkeys(dids))
        if not dids or self.lookup is None or self.clock() < self.paused_until:
            return
        for start in range(0, len(dids), 25):
            try:
                found = self.lookup(dids[start:start + 25])
            except Exception as exc:  # the AppView is optional: the stream must go on without it
                self.paused_until = self.clock() + LOOKUP_PAUSE_S
                log.warning("bluesky profile lookup failed (%s: %s); authors stay as DIDs for %.0f s",
                            type(exc).__name__, exc, LOOKUP_PAUSE_S)
                return
            for did, fields in found.items():
                self.remember(did, **fields)

    def _with_author(self, mention: Mention) -> Mention:
        did = mention.raw["did"]
        known = self.known.get(did, {})
        handle = known.get("handle")
        try:
            created = parse_time(known.get("created_at"))
        except ValueError:
            created = None
        return mention.replace(author=f"@{handle}" if handle and handle != "handle.invalid" else did,
                               author_followers=known.get("followers"), author_created_at=created)


# -- events -------------------------------------------------------------------------------------

def post_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{COLLECTION}/{rkey}"


def to_mention(event: dict[str, Any]) -> Mention:
    did, commit = event["did"], event["commit"]
    record = commit.get("record") or {}
    uri = post_uri(did, commit["rkey"])
    reply = record.get("reply") or {}
    langs = record.get("langs") or []
    return Mention.from_dict({
        "source": "bluesky",
        "source_id": uri,
        "url": f"https://bsky.app/profile/{did}/post/{commit['rkey']}",
        "author": did,
        "created_at": record.get("createdAt"),
        "text": record.get("text") or "",
        "lang": langs[0] if langs else None,
        "parent_id": (reply.get("parent") or {}).get("uri"),
        "thread_id": (reply.get("root") or {}).get("uri") or uri,
        "raw": event,
    })


class _Batch:
    """What one page gathers: matched posts by uri, deleted keys, the newest time_us seen."""

    def __init__(self, recent: list[list]):
        self.mentions: dict[str, Mention] = {}
        self.deleted: list[str] = []
        self.recent = {uri for _, uri in recent}
        self.time_us: int | None = None
        self.started = time.monotonic()

    def take(self, event: dict[str, Any], match: KeywordFilter, authors: Authors) -> None:
        kind, did = event.get("kind"), event.get("did")
        if kind == "identity" and did:
            authors.remember(did, handle=(event.get("identity") or {}).get("handle"))
        commit = event.get("commit") or {}
        if kind != "commit" or commit.get("collection") != COLLECTION or not did or not commit.get("rkey"):
            return
        uri = post_uri(did, commit["rkey"])
        if commit.get("operation") == "delete":
            self.mentions.pop(uri, None)
            self.deleted.append(f"bluesky:{uri}")
        elif commit.get("operation") in ("create", "update") and uri not in self.recent:
            text = (commit.get("record") or {}).get("text") or ""
            if text and match(text):
                try:
                    self.mentions[uri] = to_mention(event)
                except ValueError as exc:  # a client wrote a malformed record: skip it, keep the stream
                    log.warning("bluesky: skipped %s: %s", uri, exc)


# -- the stream ---------------------------------------------------------------------------------

def subscribe_url(source, time_us: int | None) -> str:
    base = source.url or DEFAULT_URL
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query) + [("wantedCollections", COLLECTION)]
    if time_us:
        query.append(("cursor", str(max(0, int(time_us) - REWIND_US))))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def listen(source, cursor: dict | None, rules, *, connect=ws_connect, profiles: Profiles | None = None,
           sleep: Callable[[float], None] = time.sleep, now: Callable[[], float] = time.time) -> Iterator[Page]:
    """Pages of posts naming a brand (and deletions) from Jetstream after the cursor, until caught up or idle."""
    state = {"time_us": (cursor or {}).get("time_us"), "recent": list((cursor or {}).get("recent") or [])}
    lookup = profiles if profiles is not None else (public_profiles if source.profiles else None)
    reading = _Reading(source, KeywordFilter(rules.brands), Authors(lookup), now)
    backoff = Backoff(base=1.0, cap=30.0)
    while True:
        url = subscribe_url(source, state["time_us"])
        try:
            with connect(url, open_timeout=source.timeout.total_seconds(), close_timeout=2,
                         max_size=2 ** 22, user_agent_header="Ecoute/0.1") as websocket:
                for page in reading.pages(websocket, state, backoff):
                    state = page.cursor
                    yield page
            return
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                raise ListenerError(f"source '{source.name}': Jetstream at {shown_url(url)} refused the connection "
                                    f"({status}); check the source's url") from None
            error = f"answered {status}"
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
            error = redact(f"{type(exc).__name__}: {exc}", url)
        if backoff.failures >= MAX_RECONNECTS:
            raise Unavailable(f"source '{source.name}': Jetstream at {shown_url(source.url or DEFAULT_URL)} failed "
                              f"{MAX_RECONNECTS + 1} times in a row ({error})")
        wait = backoff.next_wait()
        log.warning("source %s: Jetstream %s; reconnecting in %.1f s from cursor %s",
                    source.name, error, wait, state["time_us"])
        sleep(wait)


class _Reading:
    def __init__(self, source, match: KeywordFilter, authors: Authors, now: Callable[[], float]):
        self.source, self.match, self.authors = source, match, authors
        self.taken = 0
        self.started_us = int(now() * 1_000_000)

    def pages(self, websocket, state: dict, backoff: Backoff) -> Iterator[Page]:
        """Pages from one connection; a dropped connection raises after the last complete page."""
        idle = self.source.idle.total_seconds()
        until_us = self.started_us + (0 if state["time_us"] else int(idle * 1_000_000))
        batch = _Batch(state["recent"])
        while True:
            try:
                message = websocket.recv(timeout=idle)
            except TimeoutError:
                break
            try:
                event = json.loads(message)
            except ValueError:
                log.warning("source %s: skipped a message that is not JSON: %.80r", self.source.name, message)
                continue
            backoff.reset()
            batch.take(event, self.match, self.authors)
            batch.time_us = max(batch.time_us or 0, int(event.get("time_us") or 0)) or None
            caught_up = (batch.time_us or 0) >= until_us
            if caught_up or len(batch.mentions) >= PAGE_SIZE or time.monotonic() - batch.started >= PAGE_SECONDS:
                state = self._commit(batch, state)
                yield state.pop("page")
                batch = _Batch(state["recent"])
                if caught_up or self.taken >= self.source.max_items:
                    return
        if batch.time_us is not None:
            yield self._commit(batch, state)["page"]

    def _commit(self, batch: _Batch, state: dict) -> dict:
        mentions = self.authors.describe(list(batch.mentions.values()))
        self.taken += len(mentions)
        time_us = max(state["time_us"] or 0, batch.time_us or 0)
        recent = [[t, u] for t, u in state["recent"] if t >= time_us - REWIND_US]
        recent += [[m.raw["time_us"], m.source_id] for m in mentions if m.raw.get("time_us", 0) >= time_us - REWIND_US]
        cursor = {"time_us": time_us, "recent": recent}
        return {**cursor, "page": Page(mentions, cursor, deleted=list(dict.fromkeys(batch.deleted)))}


# -- replies ------------------------------------------------------------------------------------

def reply(source, mention: Mention, text: str, *, client=None) -> Reply:
    """Post `text` in reply to `mention` as BLUESKY_HANDLE (logged in with BLUESKY_APP_PASSWORD)."""
    from atproto import models

    if client is None:
        handle, password = (os.environ.get(v, "").strip() for v in (HANDLE_VARIABLE, PASSWORD_VARIABLE))
        if not handle or not password:
            raise ListenerError(f"source '{source.name}': cannot reply on Bluesky: set {HANDLE_VARIABLE} and "
                                f"{PASSWORD_VARIABLE} (an app password from Settings > Privacy and security)")
        client = _login(source, handle, password)
    commit = mention.raw.get("commit") or {}
    if not commit.get("cid"):
        raise ListenerError(f"source '{source.name}': {mention.key} has no record cid to reply to")
    parent = models.ComAtprotoRepoStrongRef.Main(uri=mention.source_id, cid=commit["cid"])
    root_ref = ((commit.get("record") or {}).get("reply") or {}).get("root")
    root = models.ComAtprotoRepoStrongRef.Main(uri=root_ref["uri"], cid=root_ref["cid"]) if root_ref else parent
    try:
        posted = client.send_post(text, reply_to=models.AppBskyFeedPost.ReplyRef(parent=parent, root=root))
    except Exception as exc:  # atproto raises its own tree and httpx's; the desk shows the message
        raise ListenerError(f"source '{source.name}': Bluesky refused the reply to {mention.source_id}: "
                            f"{type(exc).__name__}: {exc}") from None
    did, _, rkey = posted.uri.removeprefix("at://").partition(f"/{COLLECTION}/")
    return Reply(posted.uri, f"https://bsky.app/profile/{did}/post/{rkey}")


def _login(source, handle: str, password: str):
    from atproto import Client

    client = Client()
    try:
        client.login(handle, password)
    except Exception as exc:
        raise ListenerError(f"source '{source.name}': Bluesky login as {handle} failed ({type(exc).__name__}); "
                            f"check {HANDLE_VARIABLE} and {PASSWORD_VARIABLE}") from None
    return client

"""The Mastodon listener: hashtag timelines and status search of one instance, through Mastodon.py.

A source reads `instance` (base URL) for each of its `hashtags` (`/api/v1/timelines/tag/<tag>`) and
its `query` (`/api/v2/search?type=statuses`); with neither, the brands' one-word keywords are
used as hashtags. Hashtag timelines are public on most instances; full-text search needs a token
(`MASTODON_ACCESS_TOKEN`, never logged) and only finds posts whose authors opted in to search.

Cursor: `{"since_id": {"#hoot": "1170…", "q:aerolia": "1170…"}}`, the newest status id read per
feed. Each request asks for the statuses just after it (`min_id`): Mastodon then answers the
*oldest* `limit` statuses newer than the cursor, so each page's cursor covers exactly what was
read and a crash between pages loses nothing. A first run (no cursor) reads only the newest page.
Statuses at or below the cursor are dropped locally too, since a server may repeat them.

Status ids are local to an instance, so `source_id` is `<host>/<id>` (and `parent_id` likewise);
`reply` posts with the bare id. Status HTML becomes plain text: links, @mentions and #hashtags
stay as their text, everything else is dropped. Mastodon.py objects never leave this module.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
from datetime import datetime
from typing import Any, Iterator, NamedTuple

from mastodon import (Mastodon, MastodonAPIError, MastodonError, MastodonNetworkError, MastodonNotFoundError,
                      MastodonRatelimitError, MastodonServerError, MastodonUnauthorizedError, MastodonVersionError)

from pipeline.mention import Mention
from pipeline.desk.redaction import redact
from pipeline.text import mentioned_brands

from .base import ListenerError, Page, RateLimited, Unavailable
from .rss import html_to_text

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "MASTODON_ACCESS_TOKEN"
PAGE_LIMIT = 40  # the most Mastodon returns per timeline or search page
USER_AGENT = "Ecoute/0.1 (+https://github.com/ecoute)"
_HASHTAG = re.compile(r"^#?(\w+)$")


class Reply(NamedTuple):
    id: str
    url: str | None


# -- feeds and cursor ---------------------------------------------------------------------------

def feeds(source, rules) -> list[str]:
    """'#tag' per hashtag and 'q:<query>' for the query; else the brands' one-word keywords as tags."""
    tags = [_tag(t) for t in source.hashtags] if source.hashtags or source.query else _keyword_tags(rules)
    found = [f"#{t}" for t in dict.fromkeys(t for t in tags if t)]
    if source.query:
        found.append(f"q:{source.query}")
    if not found:
        raise ListenerError(f"source '{source.name}': nothing to follow on {source.instance}; set its "
                            f"hashtags (e.g. [aerolia]) or its query")
    return found


def _tag(text: str) -> str | None:
    match = _HASHTAG.match(text.strip())
    return match.group(1).lower() if match else None


def _keyword_tags(rules) -> list[str | None]:
    return [_tag(k) for brand in rules.brands for k in brand.keywords]


def _id_key(status_id: str) -> tuple[int, str]:
    return len(status_id), status_id  # numeric ids of any length, compared without int overflow worries


# -- listening ----------------------------------------------------------------------------------

def listen(source, cursor: dict | None, rules, *, api: Mastodon | None = None) -> Iterator[Page]:
    """Pages of new statuses of each feed naming a brand, oldest first, after the cursor."""
    followed = feeds(source, rules)
    api = api or client(source)
    if any(feed.startswith("q:") for feed in followed):
        _learn_version(api, source)
    since = dict((cursor or {}).get("since_id") or {})
    budget = -(-source.max_items // len(followed))
    for feed in followed:
        for mentions, newest in _read(api, source, rules, feed, since.get(feed), budget):
            since[feed] = newest
            yield Page(mentions, {"since_id": dict(since)})


def client(source, token: str | None = None) -> Mastodon:
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE, "").strip()
    return Mastodon(api_base_url=source.instance, access_token=token or None, ratelimit_method="throw",
                    request_timeout=source.timeout.total_seconds(), version_check_mode="none",
                    user_agent=USER_AGENT)


def _learn_version(api: Mastodon, source) -> None:
    """Search parameters depend on the server's version, which Mastodon.py looks up on first use; when
    that lookup fails it recurses without end (Mastodon.py 2.3.3), so look it up here, failing hard."""
    if api.mastodon_major > 1:  # known already (a client built with mastodon_version)
        return
    try:
        api.retrieve_mastodon_version(fail_hard=True)
    except MastodonVersionError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, MastodonError) else exc
        raise _listener_error(source, api, cause, "version lookup") from None


def _read(api, source, rules, feed: str, since_id: str | None, budget: int) -> Iterator[tuple[list[Mention], str]]:
    taken = 0
    while taken < budget:
        statuses = _fetch(api, source, feed, since_id, min(PAGE_LIMIT, budget - taken))
        fresh = sorted((s for s in statuses if since_id is None or _id_key(str(s["id"])) > _id_key(since_id)),
                       key=lambda s: _id_key(str(s["id"])))
        if not fresh:
            return
        since_id = str(fresh[-1]["id"])
        taken += len(fresh)
        yield [m for m in (_mention(s, source) for s in fresh if s.get("reblog") is None)
               if feed.startswith("q:") or mentioned_brands(f"{m.title or ''}\n{m.text}", rules.brands)], since_id
    log.info("source %s: stopped %s at max_items=%d; the next run resumes after id %s",
             source.name, feed, source.max_items, since_id)


def _fetch(api, source, feed: str, since_id: str | None, limit: int) -> list[dict[str, Any]]:
    try:
        if feed.startswith("#"):
            found = api.timeline_hashtag(feed[1:], min_id=since_id, limit=limit)
        else:
            found = api.search_v2(feed[2:], resolve=False, result_type="statuses", min_id=since_id,
                                  limit=limit)["statuses"]
    except MastodonError as exc:
        raise _listener_error(source, api, exc, feed) from None
    return [_plain(s) for s in found]


def _plain(value: Any) -> Any:
    """Mastodon.py's typed dicts (datetimes inside) as plain JSON data."""
    return json.loads(json.dumps(value, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o)))


def html_text(content: str) -> str:
    """A status's HTML as plain text: `<a>` text (full URL, @user, #tag) kept, every tag dropped."""
    return html_to_text(content or "")


def _host(instance: str) -> str:
    parsed = urllib.parse.urlsplit(instance if "//" in instance else f"https://{instance}")
    return parsed.netloc or instance


def _mention(status: dict[str, Any], source) -> Mention:
    host = _host(source.instance)
    account = status.get("account") or {}
    acct = account.get("acct")
    thread = status.get("conversation_id") or (status.get("pleroma") or {}).get("conversation_id")
    reply_to = status.get("in_reply_to_id")
    return Mention.from_dict({
        "source": "mastodon",
        "source_id": f"{host}/{status['id']}",
        "url": status.get("url") or status.get("uri"),
        "author": f"@{acct}" + ("" if "@" in acct else f"@{host}") if acct else None,
        "author_followers": account.get("followers_count"),
        "author_created_at": account.get("created_at"),
        "created_at": status.get("created_at"),
        "title": status.get("spoiler_text") or None,  # a content warning
        "text": html_text(status.get("content") or ""),
        "lang": status.get("language"),
        "parent_id": f"{host}/{reply_to}" if reply_to else None,
        "thread_id": f"{host}/{thread}" if thread else None,
        "raw": status,
    })


def _listener_error(source, api, exc: MastodonError, feed: str = "") -> ListenerError:
    where = redact(f"source '{source.name}' ({source.instance}{', ' + feed if feed else ''})")
    if isinstance(exc, MastodonRatelimitError):
        reset = getattr(api, "ratelimit_reset", None)
        wait = max(0.0, reset - time.time()) if isinstance(reset, (int, float)) else None
        return RateLimited(f"{where}: Mastodon rate limit reached (429)", wait)
    if isinstance(exc, MastodonNetworkError):
        return Unavailable(f"{where}: could not reach the instance ({type(exc).__name__})")
    if isinstance(exc, MastodonServerError):
        return Unavailable(f"{where}: the instance answered {_status(exc)}")
    if isinstance(exc, MastodonUnauthorizedError):
        return ListenerError(f"{where}: the instance refused the access token (401); check "
                             f"{TOKEN_VARIABLE}, or unset it for public timelines")
    if isinstance(exc, MastodonNotFoundError):
        return ListenerError(f"{where}: not found (404); check that the instance URL is a Mastodon server")
    if isinstance(exc, MastodonAPIError):
        hint = f"; this instance may require {TOKEN_VARIABLE}" if _status(exc) in (401, 403, 422) else ""
        return ListenerError(f"{where}: the instance answered {_status(exc)}: {_detail(exc)}{hint}")
    return ListenerError(f"{where}: Mastodon.py failed: {redact(str(exc))}")


def _status(exc: MastodonError) -> Any:
    return exc.args[1] if len(exc.args) > 1 else "an error"


def _detail(exc: MastodonError) -> str:
    return str(exc.args[3] if len(exc.args) > 3 and exc.args[3] else exc.args[-1])


# -- replies ------------------------------------------------------------------------------------

def reply(source, mention: Mention, text: str, *, api: Mastodon | None = None) -> Reply:
    """Post `text` as a reply to `mention` from the account of MASTODON_ACCESS_TOKEN on the source's instance.

    The author's handle is prefixed when the text does not name it, so they are notified.
    """
    if api is None:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise ListenerError(f"source '{source.name}': cannot reply on {source.instance}: {TOKEN_VARIABLE} "
                                f"is not set; create an access token with write:statuses in the account's "
                                f"Preferences > Development and export it")
        api = client(source, token)
    status_id = str(mention.raw.get("id") or mention.source_id.rsplit("/", 1)[-1])
    handle = (mention.raw.get("account") or {}).get("acct") or (mention.author or "@").split("@")[1]
    if handle and f"@{handle}".lower() not in text.lower():
        text = f"@{handle} {text}"
    try:
        posted = api.status_post(text, in_reply_to_id=status_id)
    except MastodonError as exc:
        raise _listener_error(source, api, exc, f"reply to {status_id}") from None
    return Reply(f"{_host(source.instance)}/{posted['id']}", posted.get("url") or posted.get("uri"))

"""The X (Twitter) listener: API v2 recent search through tweepy, resumable by tweet id.

The query is `source.query`, or built from the brands' keywords and exclusions by `build_queries`
(split into several queries when they would pass X's 512-character limit).

Cursor, per query: `{"since_id": "…"}` means every tweet newer than since_id is stored. Pages come
newest → oldest, so while a sweep is under way a page's cursor keeps the old since_id and adds
`until_id` (the oldest id stored so far) and `newest_id` (the newest of the sweep). A restart from
such a cursor fetches since_id < id < until_id, and only when that is exhausted commits
`since_id = newest_id`. A crash or `max_items` mid-sweep therefore never skips a tweet; at worst a
page is fetched twice and the store's identity keys absorb it. With several queries the cursor is
`{"queries": {query: state}}`.

tweepy objects never leave this module: tweets become `Mention`s, errors become listener errors.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from typing import Iterator, NamedTuple

import requests
import tweepy

from pipeline.mention import Mention

from .base import ListenerError, Page, RateLimited, Unavailable, retry_after_seconds

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "TWITTER_BEARER_TOKEN"
# replies post as a user: OAuth 1.0a user context (the app's key and secret, the account's token and secret)
REPLY_CREDENTIALS = {"consumer_key": "TWITTER_API_KEY", "consumer_secret": "TWITTER_API_SECRET",
                     "access_token": "TWITTER_ACCESS_TOKEN", "access_token_secret": "TWITTER_ACCESS_SECRET"}
QUERY_LIMIT = 512  # recent search on the Basic and Pro tiers
TWEET_FIELDS = ["created_at", "lang", "conversation_id", "in_reply_to_user_id", "referenced_tweets",
                "public_metrics", "author_id"]
USER_FIELDS = ["created_at", "public_metrics", "username"]
NOT_RETWEET = "-is:retweet"
_BARE_WORD = re.compile(r"^[@#$]?\w+$")


class _Redact(logging.Filter):
    """tweepy logs request headers at DEBUG, bearer token or OAuth signature included: blank them out
    before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and ("Bearer " in record.msg or "OAuth " in record.msg):
            record.msg = re.sub(r"Bearer [^'\"\s,}]+", "Bearer <redacted>", record.msg)
            record.msg = re.sub(r"OAuth [^'\"}]+", "OAuth <redacted>", record.msg)
        return True


logging.getLogger("tweepy.client").addFilter(_Redact())


# -- queries ------------------------------------------------------------------------------------

def _term(phrase: str) -> str:
    """A keyword as X search syntax: @handles, #tags and single words bare, anything else quoted."""
    phrase = phrase.strip()
    if _BARE_WORD.match(phrase) and phrase.upper() not in ("OR", "AND"):
        return phrase
    return '"' + phrase.replace('"', "") + '"'


def _query(terms: list[str], tail: str) -> str:
    return f"({' OR '.join(terms)}) {tail}"


def build_queries(rules, limit: int = QUERY_LIMIT) -> list[str]:
    """Recent-search queries covering every brand keyword, each at most `limit` characters.

    Brands are grouped by their exclusions (an exclusion applies only to its own brand's keywords),
    and each group's keywords are packed greedily into as few queries as fit:
    `(aerolia OR "aerolia air" OR @aerolia) -"aerolia pizza" -is:retweet`.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for brand in rules.brands:
        exclusions = tuple(dict.fromkeys("-" + _term(p) for p in brand.exclude if p.strip()))
        terms = groups.setdefault(exclusions, [])
        known = {t.lower() for t in terms}
        terms.extend(t for t in dict.fromkeys(_term(k) for k in brand.keywords if k.strip())
                     if t.lower() not in known)
    queries: list[str] = []
    for exclusions, terms in groups.items():
        queries.extend(_pack(terms, " ".join((*exclusions, NOT_RETWEET)), limit))
    return list(dict.fromkeys(queries))


def _pack(terms: list[str], tail: str, limit: int) -> list[str]:
    queries, chunk = [], []
    for term in terms:
        if len(_query([term], tail)) > limit:
            raise ValueError(f"keyword {term} with its exclusions ({tail}) is longer than X's "
                             f"{limit}-character query limit; shorten the exclusions or set the source's query")
        if chunk and len(_query([*chunk, term], tail)) > limit:
            queries.append(_query(chunk, tail))
            chunk = []
        chunk.append(term)
    if chunk:
        queries.append(_query(chunk, tail))
    return queries


# -- cursor -------------------------------------------------------------------------------------

def _states(cursor: dict | None, queries: list[str]) -> dict[str, dict]:
    """Per-query state from a cursor in either shape (flat for one query, keyed for several)."""
    cursor = cursor or {}
    keyed = cursor.get("queries") or {}
    flat = {k: v for k, v in cursor.items() if k in ("since_id", "until_id", "newest_id")}
    # a since_id is a point in time valid for any query: a query new to the cursor starts from the
    # oldest one known, so changing the keywords refetches a little rather than skipping anything
    known = [int(s["since_id"]) for s in (flat, *keyed.values()) if s.get("since_id")]
    fallback = {"since_id": str(min(known))} if known else {}
    if len(queries) == 1 and not keyed:
        return {queries[0]: flat}
    return {q: dict(keyed.get(q) or fallback) for q in queries}


def _cursor(states: dict[str, dict]) -> dict:
    if len(states) == 1:
        return dict(next(iter(states.values())))
    return {"queries": {q: dict(s) for q, s in states.items()}}


def _state(since_id: str | None, oldest: int | None = None, newest: int | None = None) -> dict:
    values = {"since_id": since_id, "until_id": oldest, "newest_id": newest}
    return {k: str(v) for k, v in values.items() if v is not None}


# -- listening ----------------------------------------------------------------------------------

def listen(source, cursor: dict | None, rules, *, client: tweepy.Client | None = None) -> Iterator[Page]:
    """Pages of recent tweets matching the source's query (or the brands'), after the cursor."""
    try:
        queries = [source.query] if source.query else build_queries(rules)
    except ValueError as exc:
        raise ListenerError(f"source '{source.name}': {exc}") from None
    client = client or _client(source)
    states = _states(cursor, queries)
    budget = -(-source.max_items // len(queries))  # shared fairly, so no query starves the others
    for query in queries:
        for mentions, state in _sweep(client, source, query, states[query], budget):
            states[query] = state
            yield Page(mentions, _cursor(states))


def _client(source) -> tweepy.Client:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise ListenerError(f"source '{source.name}': {TOKEN_VARIABLE} is not set; create a bearer "
                            f"token in the X developer portal and export it")
    client = tweepy.Client(bearer_token=token, wait_on_rate_limit=False)
    # tweepy sets no timeout of its own: without one a stalled connection hangs the runner
    client.session.request = functools.partial(client.session.request,
                                               timeout=source.timeout.total_seconds())
    return client


def _sweep(client, source, query: str, state: dict, budget: int) -> Iterator[tuple[list[Mention], dict]]:
    """(mentions, state after them) per API page, newest → oldest, until exhausted or `budget`."""
    since_id, until_id = state.get("since_id"), state.get("until_id")
    newest = int(state["newest_id"]) if state.get("newest_id") else None
    oldest = int(until_id) if until_id else None
    taken, next_token = 0, None
    while True:
        try:
            response = _search(client, source, query, since_id, until_id, next_token, budget - taken)
        except _StaleCursor:
            log.warning("source %s: since_id %s is older than recent search reaches (7 days); "
                        "tweets between it and the last 7 days are lost", source.name, since_id)
            yield from _sweep(client, source, query, {}, budget)
            return
        mentions, truncated = _page(response, budget - taken)
        taken += len(mentions)
        if mentions:
            newest = max(newest or 0, int(mentions[0].source_id))
            oldest = int(mentions[-1].source_id)
        next_token = (response.meta or {}).get("next_token")
        if not truncated and not next_token:  # the sweep is complete: only now may since_id move
            yield mentions, _state(str(newest) if newest else since_id)
            return
        yield mentions, _state(since_id, oldest, newest)
        if truncated or taken >= budget:
            log.info("source %s: stopped at max_items=%d; the next run resumes below id %s",
                     source.name, source.max_items, oldest)
            return


def _page(response: tweepy.Response, room: int) -> tuple[list[Mention], bool]:
    """The page's tweets as Mentions, newest first, at most `room`; and whether some were left."""
    tweets = sorted(response.data or [], key=lambda t: int(t.id), reverse=True)
    users = {int(u.id): u for u in (response.includes or {}).get("users", [])}
    return [_mention(t, users) for t in tweets[:room]], len(tweets) > room


class _StaleCursor(Exception):
    """X refused since_id/until_id as older than the recent-search window."""


def _search(client, source, query, since_id, until_id, next_token, wanted: int):
    try:
        return client.search_recent_tweets(
            query, since_id=since_id, until_id=until_id, next_token=next_token,
            max_results=min(100, max(10, wanted)),  # X accepts 10–100
            tweet_fields=TWEET_FIELDS, expansions=["author_id"], user_fields=USER_FIELDS)
    except tweepy.TooManyRequests as exc:
        wait = retry_after_seconds(exc.response.headers)
        raise RateLimited(f"source '{source.name}': X rate limit reached (429)", wait) from None
    except tweepy.TwitterServerError as exc:
        raise Unavailable(f"source '{source.name}': X answered {exc.response.status_code}",
                          retry_after_seconds(exc.response.headers)) from None
    except tweepy.BadRequest as exc:
        if (since_id or until_id) and any(re.search(r"(since|until)_id", m) for m in _messages(exc)):
            raise _StaleCursor() from None
        raise ListenerError(f"source '{source.name}': X rejected the query {query!r} (400): "
                            f"{'; '.join(_messages(exc))}; fix the source's query or the brand keywords") from None
    except tweepy.Unauthorized:
        raise ListenerError(f"source '{source.name}': X refused the bearer token (401); check that "
                            f"{TOKEN_VARIABLE} holds the app's bearer token, not its API key") from None
    except tweepy.Forbidden as exc:
        raise ListenerError(f"source '{source.name}': X forbids recent search for this app (403): "
                            f"{'; '.join(_messages(exc))}; check the app's access level in the X "
                            f"developer portal") from None
    except tweepy.HTTPException as exc:
        raise ListenerError(f"source '{source.name}': X answered {exc.response.status_code}: "
                            f"{'; '.join(_messages(exc))}") from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise Unavailable(f"source '{source.name}': could not reach X ({type(exc).__name__})") from None


def _messages(exc: tweepy.HTTPException) -> list[str]:
    return [str(m) for m in exc.api_messages] or [str(exc.response.reason)]


def _mention(tweet: tweepy.Tweet, users: dict[int, tweepy.User]) -> Mention:
    data = dict(tweet.data)
    user = users.get(int(data.get("author_id") or 0))
    author = dict(user.data) if user is not None else {}
    username = author.get("username")
    replied_to = next((r["id"] for r in data.get("referenced_tweets") or []
                       if r.get("type") == "replied_to"), None)
    return Mention.from_dict({
        "source": "twitter",
        "source_id": data["id"],
        "url": f"https://x.com/{username or 'i/web'}/status/{data['id']}",
        "author": f"@{username}" if username else None,
        "author_followers": (author.get("public_metrics") or {}).get("followers_count"),
        "author_created_at": author.get("created_at"),
        "created_at": data.get("created_at"),
        "text": data.get("text", ""),
        "lang": data.get("lang"),
        "parent_id": replied_to,
        "thread_id": data.get("conversation_id"),
        "raw": {**data, "author": author} if author else data,
    })


# -- replies ------------------------------------------------------------------------------------

class Reply(NamedTuple):
    id: str
    url: str | None


def can_reply() -> bool:
    return all(os.environ.get(var, "").strip() for var in REPLY_CREDENTIALS.values())


def reply(source, mention: Mention, text: str, *, client: tweepy.Client | None = None) -> Reply:
    """Post `text` as a reply to the tweet `mention`, as the account of the TWITTER_ACCESS_TOKEN."""
    client = client or _user_client(source)
    try:
        response = client.create_tweet(text=text, in_reply_to_tweet_id=mention.source_id, user_auth=True)
    except tweepy.TooManyRequests as exc:
        raise RateLimited(f"X rate limit reached (429) replying to {mention.source_id}",
                          retry_after_seconds(exc.response.headers)) from None
    except tweepy.TwitterServerError as exc:
        raise Unavailable(f"X answered {exc.response.status_code} replying to {mention.source_id}") from None
    except tweepy.Unauthorized:
        raise ListenerError(f"X refused the reply credentials (401); check {', '.join(REPLY_CREDENTIALS.values())} "
                            f"(the app's API key and secret, the account's access token and secret)") from None
    except tweepy.HTTPException as exc:
        status = exc.response.status_code
        hint = ("; the app needs Read and Write permission, and X only lets an account reply to a post that "
                "mentions it or whose author follows it" if status == 403 else "")
        raise ListenerError(f"X refused the reply to {mention.source_id} ({status}): "
                            f"{'; '.join(_messages(exc))}{hint}") from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise Unavailable(f"could not reach X ({type(exc).__name__}) replying to {mention.source_id}") from None
    tweet_id = str(response.data["id"])
    return Reply(tweet_id, f"https://x.com/i/web/status/{tweet_id}")


def _user_client(source) -> tweepy.Client:
    missing = [var for var in REPLY_CREDENTIALS.values() if not os.environ.get(var, "").strip()]
    if missing:
        raise ListenerError(f"cannot reply on X: {', '.join(missing)} not set; create them in the X developer "
                            f"portal (app with Read and Write permission, User authentication settings)")
    client = tweepy.Client(**{key: os.environ[var].strip() for key, var in REPLY_CREDENTIALS.items()},
                           wait_on_rate_limit=False)
    client.session.request = functools.partial(client.session.request, timeout=source.timeout.total_seconds())
    return client

"""The Reddit listener: search, new submissions or new comments of some subreddits, through praw.

Modes (`source.mode`): "search" runs `subreddit("a+b").search(query, sort="new")` with
`source.query` or the brands' keywords OR-joined; "submissions" reads `/new`, "comments" reads
`/comments`, and both keep only items that name a brand (`pipeline.text.mentioned_brands`).

Cursor: `{"seen": [last ~1000 fullnames], "newest_utc": float}`. Listings run newest → oldest, so
a run reads until it meets an item older than `newest_utc - RESUME_MARGIN_S` (or `max_items`),
then yields its pages oldest → newest: each page's cursor only covers items up to that page, so a
crash between pages loses nothing. The margin exists because Reddit lists some items late (the
spam filter holds them, listings are cached); `seen` keeps those re-read within the margin from
coming back twice.

Credentials: REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT, or a praw.ini site
(praw's own lookup: `praw_site`, else [DEFAULT]). praw objects never leave this module; their
attributes are read from the fetched data only (`vars`), since a missing one makes praw fetch.
"""
from __future__ import annotations

import configparser
import logging
import os
from typing import Any, Iterator, NamedTuple

import praw
import prawcore
from praw.exceptions import MissingRequiredAttributeException, PRAWException

from pipeline.mention import Mention
from pipeline.text import mentioned_brands

from .base import ListenerError, Page, RateLimited, Unavailable, retry_after_seconds

log = logging.getLogger(__name__)

CREDENTIALS = {"client_id": "REDDIT_CLIENT_ID", "client_secret": "REDDIT_CLIENT_SECRET",
               "user_agent": "REDDIT_USER_AGENT"}
# replies post as a user: the script app's id and secret with that account's name and password
REPLY_CREDENTIALS = {"client_id": "REDDIT_CLIENT_ID", "client_secret": "REDDIT_CLIENT_SECRET",
                     "username": "REDDIT_USERNAME", "password": "REDDIT_PASSWORD"}
SEEN_KEPT = 1000
RESUME_MARGIN_S = 1800.0
PAGE_SIZE = 100
SEARCH_LIMIT = 512  # characters Reddit accepts in q
GONE = ("[deleted]", "[removed]")


def listen(source, cursor: dict | None, rules, *, reddit: praw.Reddit | None = None) -> Iterator[Page]:
    """Pages of the source's subreddits' posts or comments naming a brand, after the cursor."""
    reddit = reddit or _reddit(source)
    seen = list((cursor or {}).get("seen") or [])
    newest_utc = float((cursor or {}).get("newest_utc") or 0.0)
    try:
        items = _read(source, rules, reddit, set(seen), newest_utc - RESUME_MARGIN_S)
    except prawcore.PrawcoreException as exc:
        raise _listener_error(source, exc) from None
    except PRAWException as exc:
        raise ListenerError(f"source '{source.name}': praw failed: {exc}") from None
    yield from _pages(items, seen, newest_utc)


def _reddit(source) -> praw.Reddit:
    settings = {key: os.environ[var] for key, var in CREDENTIALS.items() if os.environ.get(var)}
    try:
        return praw.Reddit(**settings, check_for_updates=False,
                           timeout=max(1, int(source.timeout.total_seconds())))
    except MissingRequiredAttributeException as exc:
        missing = str(exc).split("'")[1] if "'" in str(exc) else "a credential"
        raise ListenerError(
            f"source '{source.name}': Reddit {missing} is missing; export "
            f"{', '.join(CREDENTIALS.values())} (create a 'script' app at "
            f"https://www.reddit.com/prefs/apps), or put them in a praw.ini site") from None
    except configparser.NoSectionError as exc:
        raise ListenerError(f"source '{source.name}': praw.ini has no site [{exc.section}] "
                            f"(named by $praw_site); add it or unset praw_site") from None


def _read(source, rules, reddit, seen: set[str], since_utc: float) -> list[dict[str, Any]]:
    """Fields of the new items (newest first as listed), up to max_items read, as plain dicts."""
    found: list[dict[str, Any]] = []
    for item in _listing(source, rules, reddit):
        fields = _fields(item)
        if fields["created_utc"] < since_utc:
            break  # listings are newest first: the rest was read by an earlier run
        fields["matches"] = fields["name"] not in seen and _wanted(source, rules, fields)
        found.append(fields)
    return found


def _listing(source, rules, reddit) -> Iterator[Any]:
    subreddit = reddit.subreddit("+".join(source.subreddits))
    limits = {"limit": source.max_items, "request_limit": min(100, source.max_items)}
    if source.mode == "submissions":
        return subreddit.new(**limits)
    if source.mode == "comments":
        return subreddit.comments(**limits)
    return subreddit.search(_search_query(source, rules), sort="new", **limits)


def _search_query(source, rules) -> str:
    if source.query:
        return source.query
    terms = dict.fromkeys(k.strip() if " " not in k.strip() else f'"{k.strip()}"'
                          for brand in rules.brands for k in brand.keywords if k.strip())
    query = " OR ".join(terms)
    if len(query) > SEARCH_LIMIT:
        raise ListenerError(f"source '{source.name}': the brands' keywords make a {len(query)}-character "
                            f"search, over Reddit's {SEARCH_LIMIT}; set the source's query")
    return query


def _wanted(source, rules, fields: dict[str, Any]) -> bool:
    if fields["text"] in GONE:
        return False
    if source.mode == "search":
        return True  # Reddit already matched the query
    return bool(mentioned_brands(f"{fields['title'] or ''}\n{fields['text']}", rules.brands))


def _fields(item) -> dict[str, Any]:
    """What a Mention needs from a Submission or Comment, from its fetched data only."""
    data = vars(item)
    author = data.get("author")
    common = {
        "name": data.get("name") or item.fullname,
        "created_utc": float(data.get("created_utc") or 0.0),
        "author": None if author is None or str(author) in GONE else str(author),
        "subreddit": str(data.get("subreddit") or ""),
        "score": data.get("score"),
    }
    if isinstance(item, praw.models.Comment):
        return {**common, "title": None, "text": data.get("body") or "",
                "permalink": data.get("permalink") or _comment_path(data),
                "parent_id": data.get("parent_id"), "thread_id": data.get("link_id"),
                "link_title": data.get("link_title")}
    selftext = data.get("selftext") or ""
    text = (data.get("title") or "") if selftext in ("", *GONE) else selftext  # link or removed post: the title
    return {**common, "title": data.get("title"), "text": text, "permalink": data.get("permalink"),
            "parent_id": None, "thread_id": data.get("name"), "num_comments": data.get("num_comments"),
            "link_url": data.get("url"), "over_18": data.get("over_18")}


def _comment_path(data: dict[str, Any]) -> str:
    # listings recorded before 2017 carry no comment permalink
    # (../shared/fixtures/praw/TestSubredditListings.test_comments.json)
    return f"/comments/{str(data.get('link_id', ''))[3:]}/_/{data.get('id')}/"


def _pages(items: list[dict[str, Any]], seen: list[str], newest_utc: float) -> Iterator[Page]:
    """Oldest → newest pages; each cursor covers exactly the items up to its page."""
    items = sorted(items, key=lambda f: (f["created_utc"], f["name"]))
    batch: list[Mention] = []
    for fields in items:
        newest_utc = max(newest_utc, fields["created_utc"])
        if not fields["matches"]:
            continue
        batch.append(_mention(fields))
        seen.append(fields["name"])
        if len(batch) >= PAGE_SIZE:
            yield Page(batch, _cursor(seen, newest_utc))
            batch = []
    if batch or items:
        yield Page(batch, _cursor(seen, newest_utc))


def _cursor(seen: list[str], newest_utc: float) -> dict:
    return {"seen": list(dict.fromkeys(seen))[-SEEN_KEPT:], "newest_utc": newest_utc}


def _mention(fields: dict[str, Any]) -> Mention:
    permalink = (fields["permalink"] or "").split("?")[0]  # search results add ?ref=search_posts
    raw = {k: v for k, v in fields.items() if k not in ("matches", "text") and v is not None}
    return Mention.from_dict({
        "source": "reddit",
        "source_id": fields["name"],
        "url": "https://www.reddit.com" + permalink if permalink else None,
        "author": f"u/{fields['author']}" if fields["author"] else None,
        "author_followers": None,
        "created_at": fields["created_utc"],
        "title": fields["title"],
        "text": fields["text"],
        "parent_id": fields["parent_id"],
        "thread_id": fields["thread_id"],
        "raw": raw,
    })


def _listener_error(source, exc: prawcore.PrawcoreException) -> ListenerError:
    where = f"source '{source.name}'"
    response = getattr(exc, "response", None)
    headers = response.headers if response is not None else {}
    if isinstance(exc, prawcore.TooManyRequests):
        return RateLimited(f"{where}: Reddit rate limit reached (429)", retry_after_seconds(headers))
    if isinstance(exc, prawcore.ServerError):
        return Unavailable(f"{where}: Reddit answered {response.status_code}", retry_after_seconds(headers))
    if isinstance(exc, prawcore.RequestException):
        return Unavailable(f"{where}: could not reach Reddit ({type(exc.original_exception).__name__})")
    if isinstance(exc, prawcore.OAuthException):
        return ListenerError(f"{where}: Reddit refused the credentials ({exc}); check "
                             f"{CREDENTIALS['client_id']} and {CREDENTIALS['client_secret']}")
    if isinstance(exc, prawcore.Redirect):
        return ListenerError(f"{where}: a subreddit in {source.subreddits} does not exist "
                             f"(Reddit redirected to {exc.path}); fix the source's subreddits")
    status = response.status_code if response is not None else None
    if status == 401:
        return ListenerError(f"{where}: Reddit refused the credentials (401); check "
                             f"{CREDENTIALS['client_id']} and {CREDENTIALS['client_secret']}")
    if status in (403, 404):
        return ListenerError(f"{where}: Reddit answered {status} for {source.subreddits}; a subreddit "
                             f"may be private, quarantined or banned: remove it from the source")
    return ListenerError(f"{where}: Reddit failed: {exc}")


# -- replies ------------------------------------------------------------------------------------

class Reply(NamedTuple):
    id: str | None
    url: str | None


def can_reply() -> bool:
    return all(os.environ.get(var, "").strip() for var in REPLY_CREDENTIALS.values())


def reply(source, mention: Mention, text: str, *, reddit: praw.Reddit | None = None) -> Reply:
    """Post `text` as a comment under the submission or comment `mention` (its fullname, t3_/t1_)."""
    reddit = reddit or _user_reddit(source)
    kind, _, id36 = mention.source_id.partition("_")
    if kind not in ("t1", "t3") or not id36:
        raise ListenerError(f"{mention.key} is not a Reddit comment or submission (t1_/t3_ fullname)")
    thing = reddit.comment(id36) if kind == "t1" else reddit.submission(id36)
    try:
        posted = thing.reply(text)
    except praw.exceptions.RedditAPIException as exc:   # THREAD_LOCKED, DELETED_COMMENT, RATELIMIT…
        reasons = "; ".join(f"{item.error_type}: {item.message}" for item in exc.items)
        raise ListenerError(f"Reddit refused the reply to {mention.source_id}: {reasons}") from None
    except prawcore.PrawcoreException as exc:
        raise _reply_error(mention, exc) from None
    if posted is None:   # praw: Reddit gave no comment back (a quarantined subreddit)
        return Reply(None, mention.url)
    data = vars(posted)
    path = data.get("permalink") or _comment_path(data)
    return Reply(data.get("name") or f"t1_{data.get('id')}", "https://www.reddit.com" + path)


def _reply_error(mention: Mention, exc: prawcore.PrawcoreException) -> ListenerError:
    where = f"replying to {mention.source_id}"
    response = getattr(exc, "response", None)
    headers = response.headers if response is not None else {}
    if isinstance(exc, prawcore.TooManyRequests):
        return RateLimited(f"Reddit rate limit reached (429) {where}", retry_after_seconds(headers))
    if isinstance(exc, prawcore.ServerError):
        return Unavailable(f"Reddit answered {response.status_code} {where}", retry_after_seconds(headers))
    if isinstance(exc, prawcore.RequestException):
        return Unavailable(f"could not reach Reddit ({type(exc.original_exception).__name__}) {where}")
    if isinstance(exc, prawcore.OAuthException):
        return ListenerError(f"Reddit refused the credentials ({exc}) {where}; check "
                             f"{', '.join(REPLY_CREDENTIALS.values())}")
    status = response.status_code if response is not None else None
    if status == 403:
        return ListenerError(f"Reddit answered 403 {where}: the account may be banned from the subreddit, "
                             f"or the post archived or locked")
    return ListenerError(f"Reddit failed {where}: {exc}")


def _user_reddit(source) -> praw.Reddit:
    missing = [var for var in REPLY_CREDENTIALS.values() if not os.environ.get(var, "").strip()]
    if missing:
        raise ListenerError(f"cannot reply on Reddit: {', '.join(missing)} not set; create a 'script' app at "
                            f"https://www.reddit.com/prefs/apps and export its id and secret with the account's "
                            f"name and password")
    settings = {key: os.environ[var].strip() for key, var in REPLY_CREDENTIALS.items()}
    agent = os.environ.get(CREDENTIALS["user_agent"], "").strip() or f"ecoute desk (by u/{settings['username']})"
    return praw.Reddit(**settings, user_agent=agent, check_for_updates=False,
                       timeout=max(1, int(source.timeout.total_seconds())))

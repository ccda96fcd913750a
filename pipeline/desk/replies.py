"""Replies from the desk: post an agent's answer under the case's latest post, or hand it back to post by hand.

`send_reply` finds the case's newest mention, picks the platform by its source type and posts through
that listener's `reply()` (X: tweepy `create_tweet` with OAuth 1.0a user context; Reddit: praw
`reply()` as a script app's user; Mastodon and Bluesky: their listeners). The outcome is one of:

- "sent": posted; the reply's id and link are on the case (`Store.replied`), its first response timed.
- "manual": this platform has no reply credentials (`can_post` is False) or cannot take replies (RSS,
  imported files). Nothing is stored: the desk copies the text, opens `post_url`, and the agent marks
  the case replied (`Store.replied` without a reply id).
- "failed": the platform refused or could not be reached. `Store.reply_failed` keeps the case claimed
  by the agent with the error on it (never "replied"); `error` says what to fix.

Credentials come only from the environment (REPLY_CREDENTIALS below, also in docs/desk.md), never from
rules.yaml, and are never logged.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Literal

import sqlalchemy as sa

from listeners import bluesky, mastodon, reddit, twitter
from listeners.base import ListenerError

from pipeline.rules import Rules, Source
from pipeline.store import OPEN_STATUSES, QueueConflict, Store, _row_mention, mentions, queue_items

log = logging.getLogger(__name__)

REPLIERS: dict[str, Callable] = {"twitter": twitter.reply, "reddit": reddit.reply,
                                 "mastodon": mastodon.reply, "bluesky": bluesky.reply}
REPLY_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "twitter": tuple(twitter.REPLY_CREDENTIALS.values()),
    "reddit": tuple(reddit.REPLY_CREDENTIALS.values()),
    "mastodon": (mastodon.TOKEN_VARIABLE,),
    "bluesky": (bluesky.HANDLE_VARIABLE, bluesky.PASSWORD_VARIABLE),
}


@dataclass(frozen=True)
class ReplyOutcome:
    status: Literal["sent", "manual", "failed"]
    item_id: int
    platform: str                      # the mention's source type: twitter, reddit, mastodon, bluesky, rss…
    text: str
    post_url: str | None = None        # the customer's post (to open when replying by hand)
    reply_id: str | None = None
    reply_url: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def can_post(source_type: str) -> bool:
    """Whether replies to this source type can be posted: a replier exists and its credentials are set."""
    needed = REPLY_CREDENTIALS.get(source_type)
    return bool(needed) and all(os.environ.get(var, "").strip() for var in needed)


def send_reply(store: Store, item_id: int, agent: str, text: str, rules: Rules | None = None) -> ReplyOutcome:
    """Post `text` under the case's latest mention as the brand's account; see the module doc for outcomes.

    Raises QueueConflict when the case does not exist or is closed, ValueError for an empty text.
    """
    if not text.strip():
        raise ValueError("the reply is empty")
    mention = latest_mention(store, item_id)
    outcome = ReplyOutcome("manual", item_id, mention.source, text, post_url=mention.url)
    if not can_post(mention.source):
        return outcome
    try:
        posted = REPLIERS[mention.source](_source_for(rules, mention), mention, text)
    except ListenerError as exc:
        return _failed(store, item_id, agent, text, mention, str(exc))
    except Exception as exc:  # a client library's own error the listener does not map: the desk still shows it
        log.exception("case %s: unexpected error replying on %s", item_id, mention.source)
        return _failed(store, item_id, agent, text, mention, f"{mention.source} reply failed: "
                                                             f"{type(exc).__name__}: {exc}")
    try:
        store.replied(item_id, agent, text, reply_id=posted.id, reply_url=posted.url)
    except QueueConflict:   # closed by someone else while posting: the reply is out, keep it on the timeline
        store.note(item_id, agent, f"Reply posted after the case was closed ({posted.url or posted.id}): {text}")
    return ReplyOutcome("sent", item_id, mention.source, text, post_url=mention.url, reply_id=posted.id,
                        reply_url=posted.url)


def _failed(store: Store, item_id: int, agent: str, text: str, mention, error: str) -> ReplyOutcome:
    log.warning("case %s: reply on %s failed: %s", item_id, mention.source, error)
    store.reply_failed(item_id, agent, text, error)
    return ReplyOutcome("failed", item_id, mention.source, text, post_url=mention.url, error=error)


def latest_mention(store: Store, item_id: int):
    """The case's newest mention (the one a reply goes under); QueueConflict when the case is not open."""
    with store.engine.connect() as c:
        row = c.execute(sa.select(queue_items.c.status, mentions)
                        .select_from(queue_items.join(mentions, mentions.c.key == queue_items.c.mention_key))
                        .where(queue_items.c.id == item_id)).mappings().first()
    if row is None:
        raise QueueConflict(f"queue item {item_id} does not exist")
    if row["status"] not in OPEN_STATUSES:
        raise QueueConflict(f"queue item {item_id} is {row['status']}; reopen it before replying")
    if row["deleted_at"] is not None:
        raise QueueConflict(f"the post of queue item {item_id} was deleted upstream; nothing to reply to")
    return _row_mention(row)


def _source_for(rules: Rules | None, mention) -> Source:
    """The rules' source of this type (for Mastodon, the one on the mention's instance), else a bare one."""
    host = mention.source_id.split("/", 1)[0] if mention.source == "mastodon" else None
    for source in (rules.sources if rules else []):
        if source.type == mention.source and (host is None or mastodon._host(source.instance or "") == host):
            return source
    return Source.model_construct(name=f"{mention.source} replies", type=mention.source,
                                  instance=f"https://{host}" if host else None, timeout=timedelta(seconds=20))

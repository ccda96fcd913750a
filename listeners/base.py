"""What every listener shares: the Page it yields, the errors it raises, the backoff it gets.

A listener is one module with `listen(source, cursor, rules) -> Iterator[Page]`:
- `source` is the validated `sources:` entry (pipeline.rules.Source), `rules` the whole Rules
  (for brand keywords), `cursor` what its last committed Page returned (None on first run).
- Each Page holds mentions and the cursor *after* them; the runner stores both in one
  transaction, so a restart resumes after the last committed page.
- Library objects (tweepy Response, praw Comment, feedparser dicts) never leave the module.
- Errors the runner should wait out are raised as `RateLimited` (429, with the server's hint) or
  `Unavailable` (5xx, timeouts, connection errors). Anything else is a `ListenerError` with a
  message that names the source and what to fix (a feed URL, a missing credential).
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pipeline.mention import Mention

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    mentions: list[Mention]
    cursor: Any = field(default=None)
    deleted: list[str] = field(default_factory=list)  # keys (source:id) the platform reports deleted


class ListenerError(Exception):
    """A source failed in a way waiting will not fix (bad config, missing credentials, 4xx)."""


class Unavailable(ListenerError):
    """Transient trouble (5xx, timeout, connection reset): back off and retry."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    """HTTP 429 or an exhausted quota; `retry_after` is the server's hint in seconds, if any."""


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or `x-rate-limit-reset` (epoch)."""
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    for name in ("x-rate-limit-reset", "x-ratelimit-reset"):
        reset = lower.get(name)
        if reset:
            try:
                seconds = float(reset)
            except ValueError:
                continue
            # X sends an epoch time; Reddit sends seconds until the reset
            return max(0.0, seconds - now) if seconds > 1e9 else seconds
    return None


@dataclass
class Backoff:
    """Per-source waits: the server's hint first, else exponential with jitter, capped."""

    base: float = 2.0
    cap: float = 900.0
    failures: int = 0
    rng: Callable[[], float] = random.random

    def next_wait(self, hint: float | None = None) -> float:
        self.failures += 1
        if hint is not None:
            return min(max(hint, 0.0), self.cap * 4)
        exponential = min(self.cap, self.base * 2 ** (self.failures - 1))
        return exponential / 2 + self.rng() * exponential / 2

    def reset(self) -> None:
        self.failures = 0

"""`ecoute listen`: run every configured source on its interval, hand each page with its cursor to be kept.

The caller (pipeline/listen.py) passes where pages go, a `PageStore` (`pipeline.store.Store` is one):
listeners never import the store. Each page and the cursor after it are committed in one
transaction (`save_page`): killed at any point, a restart resumes after the last committed page, so
nothing is lost and the store's identity keys absorb what is fetched twice. A source that fails
backs off alone (server hints first); the others go on. SIGINT/SIGTERM stop after the page in flight.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Protocol

from pipeline.mention import Mention
from pipeline.rules import Rules, Source

from . import LISTENERS
from .base import Backoff, ListenerError, Unavailable

if TYPE_CHECKING:
    from pipeline.store import Saved

log = logging.getLogger(__name__)


class PageStore(Protocol):
    """Where the runner keeps what it fetches: cursors, pages, upstream deletions, each source's health."""

    def get_cursor(self, source_name: str) -> Any: ...

    def save_page(self, source_name: str, batch: list[Mention], cursor: Any) -> Saved:
        """The page's mentions and the cursor after them, in one transaction."""

    def mark_deleted(self, key: str, actor: str, purge: bool = False, reason: str = "") -> bool: ...

    def record_health(self, source_name: str, items: int = 0, error: str | None = None,
                      backoff_until: datetime | None = None) -> None: ...


def plain_error(exc: BaseException) -> str:
    """An unexpected error as one line (the caller may pass a describer that knows its storage's errors)."""
    return f"{type(exc).__name__}: {str(exc)[:500]}"


@dataclass
class Outcome:
    source: str
    fetched: int = 0
    new: int = 0
    error: str | None = None
    wait: float = 0.0
    deleted: int = 0                                    # copies of deleted posts, not stored again
    refused: list[str] = field(default_factory=list)    # "key: reason" per post the database refused

    def line(self) -> str:
        text = f"{self.source}: {self.fetched} fetched, {self.new} new"
        if self.deleted:
            text += f", {self.deleted} deleted before (not stored again)"
        if self.refused:
            text += f", {len(self.refused)} refused ({'; '.join(self.refused[:3])})"
        if self.error:
            text += f"; error: {self.error}" + (f" (retry in {self.wait:.0f} s)" if self.wait else "")
        return text


@dataclass
class StopFlag:
    stopped: bool = False

    def __call__(self) -> bool:
        return self.stopped

    def set(self, *_args) -> None:
        self.stopped = True


def run_source(store: PageStore, rules: Rules, source: Source, backoff: Backoff,
               stop: Callable[[], bool] = lambda: False,
               describe: Callable[[BaseException], str] = plain_error) -> Outcome:
    """One cycle of one source: fetch pages until the listener is done, keep each with its cursor in `store`;
    `describe` turns an unexpected error (a listener's bug, the storage's failure) into one line."""
    outcome = Outcome(source.name)
    listen = LISTENERS.get(source.type)
    try:
        if listen is None:
            raise ListenerError(f"source '{source.name}': no listener for type '{source.type}' yet")
        for page in listen(source, store.get_cursor(source.name), rules):
            for key in page.deleted:  # before the page: its cursor must not pass a deletion not yet marked
                store.mark_deleted(key, actor=f"source:{source.name}", reason="deleted upstream")
            saved = store.save_page(source.name, page.mentions, page.cursor)
            outcome.new, outcome.deleted = outcome.new + saved.new, outcome.deleted + saved.deleted
            outcome.refused += [str(refused) for refused in saved.refused]
            outcome.fetched += len(page.mentions)
            if stop():
                break
    except Unavailable as exc:
        outcome.error, outcome.wait = str(exc), backoff.next_wait(exc.retry_after)
    except ListenerError as exc:
        outcome.error, outcome.wait = str(exc), backoff.next_wait(None) * 8
    except Exception as exc:  # an unexpected bug in one listener must not stop the others
        log.error("source %s failed: %s", source.name, describe(exc))
        log.debug("source %s: traceback", source.name, exc_info=True)   # -v; SQL values are hidden by the engine
        outcome.error, outcome.wait = describe(exc), backoff.next_wait(None) * 8
    else:
        backoff.reset()
    until = datetime.now(timezone.utc) + timedelta(seconds=outcome.wait) if outcome.error else None
    store.record_health(source.name, outcome.fetched, outcome.error, until)
    if outcome.error:
        log.warning("source %s: %s; waiting %.0f s", source.name, outcome.error, outcome.wait)
    for refused in outcome.refused:
        log.warning("source %s: post refused by the store, the rest of its page kept: %s", source.name, refused)
    return outcome


@dataclass
class Schedule:
    due: dict[str, float] = field(default_factory=dict)
    backoffs: dict[str, Backoff] = field(default_factory=dict)


def listen_forever(store: PageStore, rules: Rules, sources: list[Source], after_cycle: Callable[[], None],
                   report: Callable[[str], None], stop: StopFlag | None = None,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                   describe: Callable[[BaseException], str] = plain_error) -> None:
    """The service: each source on its interval (or its backoff), until SIGINT/SIGTERM."""
    stop = stop or StopFlag()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop.set)
    schedule = Schedule({s.name: clock() for s in sources}, {s.name: Backoff() for s in sources})
    while not stop():
        ran = False
        for source in sources:
            if stop() or clock() < schedule.due[source.name]:
                continue
            outcome = run_source(store, rules, source, schedule.backoffs[source.name], stop, describe)
            report(outcome.line())
            delay = outcome.wait if outcome.error else source.interval.total_seconds()
            schedule.due[source.name] = clock() + delay
            ran = ran or outcome.new > 0
        if ran:
            after_cycle()
        while not stop():
            wait = min(schedule.due.values()) - clock()
            if wait <= 0:
                break
            sleep(min(1.0, wait))
    report("stopped")


def selected_sources(rules: Rules, names: tuple[str, ...] = ()) -> list[Source]:
    known = {s.name: s for s in rules.sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ListenerError(f"no source named {', '.join(unknown)} in rules.yaml; known: {', '.join(known) or 'none'}")
    return [known[n] for n in names] if names else [s for s in rules.sources if s.enabled]

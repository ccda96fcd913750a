"""`ecoute listen` as a job: the listeners' runner keeping its pages in the store (the runner is handed
the store; listeners never import it), then, after each cycle, classify, detect alerts, escalate and deliver."""
from __future__ import annotations

from typing import Callable

from listeners.base import ListenerError
from listeners.runner import Backoff, listen_forever, run_source, selected_sources

from pipeline.alerts.detection import after_classification
from pipeline.desk import escalation
from pipeline.jobs import process_store
from pipeline.rules import Rules, Source
from pipeline.store import Store, error_line

Echo = Callable[[str], None]


def sources_to_listen(rules: Rules, names: tuple[str, ...] = ()) -> list[Source]:
    """The sources named, else every enabled one; ListenerError names an unknown name, or says none is left."""
    sources = selected_sources(rules, names)
    if not sources:
        raise ListenerError("no enabled sources in rules.yaml (see docs/sources.md)")
    return sources


def after_cycle(store: Store, rules: Rules, classify: bool, echo: Echo) -> None:
    """What follows a cycle: classify and queue the new mentions, detect alerts, then escalate and deliver
    every pending case notification (delivered once, there, rather than by `process_store`)."""
    if classify:
        classified, queued = process_store(store, rules, deliver=False)
        echo(f"classified {classified} mentions, {queued} added to the queue")
        after_classification(store, rules, echo)
    escalation.after_cycle(store, rules, echo)


def listen_once(store: Store, rules: Rules, sources: list[Source], classify: bool, echo: Echo) -> bool:
    """Every source one cycle, a line each, then `after_cycle`; True when a source failed."""
    failed = False
    for source in sources:
        outcome = run_source(store, rules, source, Backoff(), describe=error_line)
        echo(outcome.line())
        failed = failed or outcome.error is not None
    after_cycle(store, rules, classify, echo)
    return failed


def listen(store: Store, rules: Rules, sources: list[Source], classify: bool, echo: Echo) -> None:
    """The service: each source on its interval (or its backoff), `after_cycle` after a cycle that stored
    something new, until SIGINT/SIGTERM."""
    listen_forever(store, rules, sources, lambda: after_cycle(store, rules, classify, echo), echo,
                   describe=error_line)


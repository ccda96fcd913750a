"""Units of work the CLI and the dashboard share: ingest, classify, process the store, load the demo, send digests."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

from listeners.files import RowError, read_mentions

from pipeline.alerts.digests import run_due
from pipeline.mention import Labels, Mention
from pipeline.rules import Rules, parse_duration
from pipeline.stages import Context, label, load_models
from pipeline.store import Refused, Saved, Store

log = logging.getLogger(__name__)
BATCH = 256
DEMO_FILE = Path(__file__).parent / "demo" / "mentions.jsonl"


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def classify_mentions(mentions: Iterable[Mention], rules: Rules, size: int = BATCH) -> Iterator[Labels]:
    """Labels for each mention, in order, computed batch by batch."""
    ctx = Context(rules, load_models(rules))
    for batch in batched(mentions, size):
        yield from label(batch, ctx)


def ingest_file(store: Store, path: str | Path, errors: list[RowError] | None = None,
                encoding: str | None = None) -> tuple[int, Saved]:
    """Store a file's mentions in one transaction: all of the file or nothing; returns (rows read, Saved).

    Without `errors`, a bad row raises RowError and a row the database refuses raises Refused, and
    nothing of the file is kept. With `errors` (`--skip-invalid`), bad rows are collected there and
    refused rows are left out (`Saved.refused`); the rest is stored."""
    read, saved = 0, Saved()
    with store.transaction() as conn:
        for batch in batched(read_mentions(path, errors, encoding), 500):
            read += len(batch)
            saved += store.store_mentions(batch, conn=conn, strict=errors is None)
    store.record("cli", "ingest", {"file": str(path), "rows": read, "new": saved.new,
                                   "deleted": saved.deleted, "refused": len(saved.refused)})
    return read, saved


@dataclass
class Ingested:
    """One file through `ingest_checked`: rows read and what was saved, the rows left out, or why nothing was stored."""

    path: str
    read: int = 0
    saved: Saved = field(default_factory=Saved)
    skipped: list[str] = field(default_factory=list)    # bad or refused rows left out (--skip-invalid)
    problems: list[str] = field(default_factory=list)   # why nothing of the file was stored

    def line(self) -> str:
        if self.problems:
            return f"{self.path}: nothing stored ({len(self.problems)} bad rows; fix them or use --skip-invalid)"
        saved, stored = self.saved, self.read - self.saved.deleted - len(self.saved.refused)
        return (f"{self.path}: {self.read} rows, {saved.new} new mentions, {stored - saved.new} already stored"
                + (f", {saved.deleted} deleted before (not stored again)" if saved.deleted else "")
                + (f", {len(self.skipped)} bad rows skipped" if self.skipped else ""))


def ingest_checked(store: Store, path: str, skip_invalid: bool = False, encoding: str | None = None) -> Ingested:
    """`ecoute ingest` of one file. Without `skip_invalid` the file is read whole first, so that every bad
    row is listed, and a bad row or one the database refuses stores nothing; with it, those rows are left out."""
    errors: list[RowError] = []
    try:
        if not skip_invalid:
            for _ in read_mentions(path, errors, encoding):
                pass
            if errors:
                raise errors[0]
        read, saved = ingest_file(store, path, errors if skip_invalid else None, encoding)
    except (RowError, Refused) as exc:
        problems = errors or [exc if isinstance(exc, RowError) else f"{path}: {exc}"]
        return Ingested(path, problems=[str(problem) for problem in problems])
    return Ingested(path, read, saved, [*map(str, errors), *(f"{path}: {refused}" for refused in saved.refused)])


def process_store(store: Store, rules: Rules, size: int = BATCH, deliver: bool = True) -> tuple[int, int]:
    """Classify every stored mention that has no labels yet, queue what needs a response, run the
    automations on those cases, then deliver the notifications they (and earlier runs) left; `deliver`
    False leaves that to the caller (`ecoute listen` delivers once per cycle, after escalation)."""
    from pipeline.desk.automations import run_automations
    from pipeline.desk.notify import after_run

    ctx = None
    classified = queued = 0
    while True:
        pending = store.unclassified(limit=size)
        if not pending:
            route_cases(store, rules)   # after the automations, which may have put a case on a team
            if deliver:
                after_run(store, rules)
            return classified, queued
        ctx = ctx or Context(rules, load_models(rules))
        labels = label(pending, replace(ctx, recent=tuple(recent_for(store, pending, rules))))
        queued += store.save_labels(labels, rules.queue)
        run_automations(store, rules, [lab.mention_key for lab in labels])
        classified += len(labels)
        log.info("classified %d mentions, %d queued so far", classified, queued)


def route_cases(store: Store, rules: Rules) -> dict[int, str]:
    """Put new cases on their team and, under round_robin or least_open, give them to available agents
    (pipeline/desk/assignment.py); each pass also picks up cases left waiting while nobody was available."""
    if not rules.teams and rules.queue.assignment == "manual":
        return {}
    from pipeline.desk.assignment import assign_cases

    assigned = assign_cases(store, rules)
    if assigned:
        log.info("assigned %d new cases", len(assigned))
    return assigned


def recent_for(store: Store, batch: list[Mention], rules: Rules, limit: int = 5000) -> list[dict]:
    """Stored, already classified mentions around the batch's times: a coordinated burst that spans
    two batches (or two listener cycles) is still seen as one group."""
    times = [m.created_at for m in batch if m.created_at]
    if not times:
        return []
    window = rules.transparency.coordination.window
    return store.mentions_between(min(times) - window, max(times) + window, exclude={m.key for m in batch},
                                  limit=limit)


def demo_mentions(now: datetime | None = None, path: Path = DEMO_FILE) -> list[Mention]:
    """The bundled demo set, shifted in time so that its last mention is 20 minutes old."""
    mentions = list(read_mentions(path))
    latest = max(m.created_at for m in mentions if m.created_at)
    shift = (now or datetime.now(timezone.utc)) - latest - timedelta(minutes=20)
    return [m.replace(created_at=m.created_at + shift) if m.created_at else m for m in mentions]


def load_demo(store: Store, rules: Rules, now: datetime | None = None) -> tuple[int, int, int]:
    """Put the demo set in the store, classify it and, on a first load, write the desk's history (demo
    agents answered and resolved the older cases: pipeline/demo_history.py); returns (mentions, classified,
    queued)."""
    from pipeline.demo_history import write_history

    now = now or datetime.now(timezone.utc)
    mentions = demo_mentions(now)
    for batch in batched(mentions, 500):
        store.save_mentions(batch)
    classified, queued = process_store(store, rules)
    store.record("cli", "demo", {"mentions": len(mentions)})
    if classified:
        write_history(store, rules, now)
    return len(mentions), classified, queued


def output_record(input_id: str, labels: Labels) -> dict:
    """One line of `ecoute classify` output."""
    data = labels.to_dict()
    data.pop("mention_key")
    return {"id": input_id, **data}


def write_jsonl(records: Iterable[dict], handle) -> int:
    count = 0
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def digests_due(store: Store, rules: Rules, names: tuple[str, ...] = (), force: bool = False, once: bool = False,
                every: str = "1m") -> Iterator:
    """`ecoute digest`: each digest's outcome (pipeline/alerts/digests.py) as it is sent when due, checking
    again every `every` until stopped; one pass only with `once`, or with `force` (sent even when not due)."""
    while True:
        yield from run_due(rules, store, names=names, force=force)
        if once or force:
            return
        time.sleep(parse_duration(every).total_seconds())

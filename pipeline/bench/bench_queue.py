"""`ecoute bench queue`: the desk under load — the first queue page, then agents claiming at once.

Fills a store with N open cases (synthetic, reused when already there), times the first queue page
as the dashboard computes it, then runs the agents as concurrent workers, each taking the top case
(`Store.claim_next`), replying (without posting) and resolving it, for S seconds. A claim is double
when two claim events exist for one case; a case is lost when it left the open queue without being
resolved by the agent who claimed it, or was claimed and then neither resolved nor still held.
The last line printed is one JSON object.
"""
from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from pipeline.store import Store, case_events, case_mentions, classifications, mentions, queue_items, utcnow

BRANDS = ("Aerolia", "Lumelle", "Nordrail", "Parcelio")
CHUNK = 5000


def fill(store: Store, open_items: int, echo: Callable[[str], None]) -> int:
    """Top the store up to `open_items` new cases; returns how many were added."""
    with store.engine.connect() as c:
        have = c.scalar(sa.select(sa.func.count()).select_from(queue_items).where(queue_items.c.status == "new"))
        first = (c.scalar(sa.select(sa.func.max(queue_items.c.id))) or 0) + 1
    missing = max(0, open_items - have)
    rng = random.Random(first)
    now = utcnow()
    for start in range(0, missing, CHUNK):
        ids = range(first + start, first + min(missing, start + CHUNK))
        keys = [f"bench:{i}" for i in ids]
        posted = [now - timedelta(minutes=rng.randrange(0, 60 * 24 * 3)) for _ in ids]
        with store.engine.begin() as c:
            c.execute(mentions.insert(), [
                {"key": k, "source": "bench", "source_id": str(i), "text": f"bench complaint {i}",
                 "author": f"@customer{i}", "author_followers": rng.randrange(0, 50_000), "created_at": t,
                 "lang": rng.choice(("en", "fr")), "raw": "{}", "fetched_at": now}
                for i, k, t in zip(ids, keys, posted)])
            c.execute(classifications.insert(), [
                {"mention_key": k, "model": "bench", "lang": "en", "relevant": True,
                 "brands": json.dumps([rng.choice(BRANDS)]), "competitors": "[]", "sentiment": "negative",
                 "sentiment_score": 0.9, "complaint": True, "complaint_score": 0.9, "intent": "complaint",
                 "category": "delivery", "severity": "disapproval", "needs_response": True,
                 "priority": rng.randrange(0, 101), "transparency": "[]", "reasons": "[]",
                 "classified_at": now} for k in keys])
            c.execute(queue_items.insert(), [
                {"id": i, "mention_key": k, "case_key": k, "status": "new", "priority": rng.randrange(0, 101),
                 "band": "default", "due_at": t + timedelta(hours=1), "resolve_due_at": t + timedelta(days=1),
                 "created_at": now, "updated_at": now} for i, k, t in zip(ids, keys, posted)])
            c.execute(case_mentions.insert(), [{"mention_key": k, "case_id": i, "added_at": now}
                                               for i, k in zip(ids, keys)])
        echo(f"  stored {min(missing, start + CHUNK)}/{missing} open cases")
    if store.engine.dialect.name == "postgresql" and missing:
        with store.engine.begin() as c:
            c.execute(sa.text("SELECT setval(pg_get_serial_sequence('queue_items', 'id'), "
                              "(SELECT max(id) FROM queue_items))"))
            c.execute(sa.text("ANALYZE"))
    return missing


def run(db: str | None, open_items: int, agents: int, seconds: float,
        echo: Callable[[str], None] = print) -> dict:
    tmp = None
    if not db:
        tmp = tempfile.TemporaryDirectory(prefix="ecoute-bench-")
        db = str(Path(tmp.name) / "queue.db")
    store = Store(db)
    echo(f"queue benchmark on {store.engine.dialect.name}: {open_items} open cases, {agents} agents, {seconds:g} s")
    fill(store, open_items, echo)
    store.queue(limit=50)   # warm the connection pool and caches, as a dashboard already running would be
    started = time.perf_counter()
    page = store.queue(limit=50)
    page_seconds = time.perf_counter() - started
    with store.engine.connect() as c:
        open_before = c.scalar(sa.select(sa.func.count()).select_from(queue_items)
                               .where(queue_items.c.status.in_(("new", "claimed", "replied"))))
        last_event = c.scalar(sa.select(sa.func.max(case_events.c.id))) or 0

    done: dict[str, list[int]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def agent(name: str) -> None:
        own = Store(db)
        mine = done.setdefault(name, [])
        try:
            while time.monotonic() < deadline:
                case_id = own.claim_next(name)
                if case_id is None:
                    return
                own.replied(case_id, name, "Thanks, we're on it (benchmark, not posted)")
                own.resolve(case_id, name)
                mine.append(case_id)
        except Exception as exc:   # reported, and counted as lost below
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=agent, args=(f"agent{i:02d}",)) for i in range(agents)]
    started = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.perf_counter() - started

    resolved_by_agents = [c for cases in done.values() for c in cases]
    with store.engine.connect() as c:
        claims = c.execute(sa.select(case_events.c.case_id, sa.func.count())
                           .where(case_events.c.kind == "claim", case_events.c.id > last_event)
                           .group_by(case_events.c.case_id)).all()
        open_after = c.scalar(sa.select(sa.func.count()).select_from(queue_items)
                              .where(queue_items.c.status.in_(("new", "claimed", "replied"))))
        resolved = set(c.scalars(sa.select(queue_items.c.id).where(
            queue_items.c.id.in_(resolved_by_agents or [-1]), queue_items.c.status == "resolved")))
        stuck = c.scalar(sa.select(sa.func.count()).select_from(queue_items).where(
            queue_items.c.status == "claimed", queue_items.c.assignee.like("agent%"),
            queue_items.c.id.in_([case for case, _ in claims] or [-1])))
    claimed = len(claims)
    double = sum(n - 1 for _, n in claims if n > 1)
    lost = (len(set(resolved_by_agents)) - len(resolved)) + (open_before - open_after - len(resolved)) + stuck
    report = {"backend": store.engine.dialect.name, "open_items": int(open_before), "page_seconds": round(page_seconds, 4),
              "page_size": len(page), "agents": agents, "seconds": round(elapsed, 2), "claims": claimed,
              "double_claims": double, "lost": int(lost), "claims_per_s": round(claimed / elapsed, 1),
              "errors": len(errors)}
    for error in errors[:5]:
        echo(f"  error: {error}")
    echo(json.dumps(report))
    store.engine.dispose()
    if tmp:
        tmp.cleanup()
    return report

"""SLA escalation: tell someone when a case nobody has answered is due soon, and again when it breaches.

An open case without a first response (status new or claimed) reaches stage `due_soon` when its
first-response due time is within `queue.due_soon`, and `breached` once it has passed. Each stage
notifies its targets once per case: the case's team's `escalation` when the team has one, else
`queue.escalation` (webhook names or e-mail addresses). A case that is already breached when first
seen gets only the breach. The notifications are `case_notifications` rows (kind = the stage),
delivered and retried by pipeline/desk/notify.py; each stage is an 'escalated' event on the timeline.
Run by `ecoute escalate` (cron) and by `ecoute listen` each cycle.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from pipeline.desk import notify
from pipeline.rules import Escalation, Rules
from pipeline.store import Store, _naive, case_notifications, queue_items, utcnow

log = logging.getLogger(__name__)
WAITING = ("new", "claimed")        # open and not yet answered: replied cases have their first response
ACTOR = "escalation"


@dataclass
class Escalated:
    """What one run did: (case id, stage) for each stage reached, and the deliveries tried."""

    stages: list[tuple[int, str]] = field(default_factory=list)
    sent: list[notify.Sent] = field(default_factory=list)


def stage_of(due_at: datetime | None, now: datetime, rules: Rules) -> str | None:
    """'breached' past the due time, 'due_soon' within queue.due_soon of it, else None."""
    if due_at is None:
        return None
    if now >= due_at:
        return "breached"
    return "due_soon" if now >= due_at - rules.queue.due_soon else None


def targets(rules: Rules, team: str | None, stage: str) -> list[str]:
    """Who hears of a stage: the case's team's escalation if it has one, else queue.escalation."""
    own = next((t.escalation for t in rules.teams if t.name == team), None) if team else None
    chosen: Escalation = own or rules.queue.escalation
    return list(dict.fromkeys(getattr(chosen, stage)))


def escalate(store: Store, rules: Rules, now: datetime | None = None, deliver: bool = True,
             sleep: Callable[[float], None] = time.sleep) -> Escalated:
    """Add the notifications of every stage newly reached, then deliver what is pending."""
    now = _naive(now) if now is not None and now.tzinfo else (now or utcnow())
    out = Escalated()
    cases = _waiting(store, now + rules.queue.due_soon) if _has_targets(rules) else []
    for case in cases:
        stage = stage_of(case["due_at"], now, rules)
        if stage and _escalate_case(store, rules, case, stage, now):
            out.stages.append((int(case["id"]), stage))
    if deliver:
        out.sent = notify.deliver(store, rules, sleep=sleep, now=now)
    return out


def _has_targets(rules: Rules) -> bool:
    chains = [rules.queue.escalation, *(t.escalation for t in rules.teams if t.escalation)]
    return any(chain.due_soon or chain.breached for chain in chains)


def _waiting(store: Store, horizon: datetime) -> list[dict]:
    """Unanswered open cases due before `horizon`."""
    query = (sa.select(queue_items.c.id, queue_items.c.due_at, queue_items.c.team)
             .where(queue_items.c.status.in_(WAITING), queue_items.c.first_response_at.is_(None),
                    queue_items.c.due_at.is_not(None), queue_items.c.due_at <= horizon)
             .order_by(queue_items.c.due_at))
    with store.engine.connect() as c:
        return [dict(row._mapping) for row in c.execute(query)]


def _escalate_case(store: Store, rules: Rules, case: dict, stage: str, now: datetime) -> bool:
    """Notifications for one case and stage, once: False when the stage was escalated before or has no targets."""
    to = targets(rules, case["team"], stage)
    if not to:
        return False
    with store.engine.begin() as c:
        # a no-op write first locks the case (SQLite's write lock, PostgreSQL's row lock): two runs at once
        # cannot both see the stage as new
        c.execute(queue_items.update().where(queue_items.c.id == case["id"])
                  .values(updated_at=queue_items.c.updated_at))
        before = c.scalar(sa.select(sa.func.count()).where(case_notifications.c.case_id == case["id"],
                                                           case_notifications.c.kind == stage))
        if before:
            return False
        c.execute(store._upsert(case_notifications, [
            {"case_id": case["id"], "kind": stage, "name": stage, "target": target, "created_at": now,
             "attempts": 0} for target in to], ["case_id", "kind", "name", "target"], update=False))
        detail = {"stage": stage, "due_at": f"{case['due_at']:%Y-%m-%dT%H:%M:%SZ}", "notify": to}
        store._did(c, ACTOR, "escalated", int(case["id"]), detail=detail)   # timeline and audit log
    return True


def after_cycle(store: Store, rules: Rules, echo: Callable[[str], None] = log.info) -> Escalated | None:
    """Escalation as a step of `ecoute listen`, with the delivery of every pending case notification
    (the cycle's automations' too): one line of outcome, never an exception."""
    try:
        result = escalate(store, rules)
    except Exception as exc:  # noqa: BLE001 -- the listener carries on; the traceback goes to the log
        log.exception("escalation failed")
        echo(f"escalation: failed ({type(exc).__name__}: {exc}); tried again next cycle")
        return None
    if result.stages or result.sent:
        failed = [s for s in result.sent if s.error]
        echo(f"escalation: {len(result.stages)} case stage(s) escalated, {len(result.sent) - len(failed)} "
             f"notification(s) sent, {len(failed)} failed (retried next cycle)")
    return result

"""The demo's past: demo agents claimed, answered and resolved the older cases, so that the Team lead
page and the goals show figures on first start instead of ~240 unanswered, breached cases.

Written after classification through the store's own workflow (claim, replied, resolve, dismiss), each
step at a backdated `at`: the timeline and the audit log read like a desk that has been working for six
weeks. Cases opened in the last OPEN_FOR stay open: those still within their SLA wait for Claim next,
the others were answered and wait on the customer, but for the newest overdue one, left unclaimed so
that the queue shows what a breach looks like and Claim next has a case to take. Deterministic: every choice is drawn
from a generator seeded by the case's key, and every time counts from the mentions' times.

The agents are the members of the rules' teams (the case's team first), or DEMO_AGENTS. They are only
names on the cases, not desk users: a store with a user asks everyone to sign in, and the demo's
dashboard answers without sign-in on 127.0.0.1 (ui.common.identity).
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from pipeline.rules import Band, Rules
from pipeline.desk.sla import add_working_time
from pipeline.store import (QueueConflict, Store, _naive, calendar_of, case_events, case_mentions, classifications,
                    mentions, queue_items)
from pipeline.desk.templates import render, templates_for

log = logging.getLogger(__name__)

DEMO_AGENTS = ("amelie", "bruno", "chloe")   # when the rules define no team
OPEN_FOR = timedelta(hours=48)               # "the last day or so": cases opened since then stay open
LATE_SHARE = 0.12                            # first responses after the SLA target: a real desk has some
# demo data tags (raw.demo) of posts an agent closes without an answer: markup-laden junk, chatter
DISMISSED_TAGS = {"spam": "spam", "hostile-markup": "spam", "not-relevant": "irrelevant",
                  "aerolia-neutral": "irrelevant"}


@dataclass(frozen=True)
class Steps:
    """What happens to one case, and when (naive UTC); None: not done."""
    case_id: int
    agent: str
    claim: datetime | None = None
    reply: datetime | None = None
    reply_text: str = ""
    resolve: datetime | None = None
    dismiss: str | None = None               # a dismiss reason, at `resolve`


def write_history(store: Store, rules: Rules, now: datetime) -> dict[str, int]:
    """Backdate the cases' openings to their first mention, then play each new case's steps; returns how
    many cases were claimed, replied to, resolved and dismissed (also in the audit log, as 'demo')."""
    cases = unanswered_cases(store)
    now = _naive(now)
    backdate_openings(store, dict(zip(cases["id"], cases["first_posted"])))
    left_breached = newest_overdue(cases, now)
    counts = {"claimed": 0, "replied": 0, "resolved": 0, "dismissed": 0}
    for case in cases.to_dict("records"):
        steps = plan(case, rules, now, leave_unanswered=case["id"] == left_breached)
        if steps is not None:
            play(store, steps, counts)
    store.record("demo", "demo_history", counts)
    return counts


def unanswered_cases(store: Store) -> pd.DataFrame:
    """Every case new, or claimed (an automatic assignment) and not answered yet, with what the history
    needs: first and last mention times, band, due time, the classification of its opening mention, its
    author and the demo data's tags."""
    query = (sa.select(queue_items.c.id, queue_items.c.case_key, queue_items.c.band, queue_items.c.priority,
                       queue_items.c.due_at, queue_items.c.status, queue_items.c.assignee,
                       mentions.c.created_at, mentions.c.author, mentions.c.raw,
                       classifications.c.lang, classifications.c.brands, classifications.c.intent,
                       classifications.c.category)
             .select_from(queue_items.join(case_mentions, case_mentions.c.case_id == queue_items.c.id)
                          .join(mentions, mentions.c.key == case_mentions.c.mention_key)
                          .outerjoin(classifications, classifications.c.mention_key == mentions.c.key))
             .where(queue_items.c.status.in_(("new", "claimed")), queue_items.c.first_response_at.is_(None))
             .order_by(queue_items.c.id, mentions.c.created_at))
    with store.engine.connect() as c:
        rows = pd.read_sql(query, c)
    rows["created_at"] = pd.to_datetime(rows["created_at"])
    rows["tag"] = rows["raw"].map(lambda raw: json.loads(raw or "{}").get("demo"))
    grouped = rows.groupby("id", sort=True)
    cases = grouped.first()                       # the opening mention's labels
    cases["first_posted"] = grouped["created_at"].min()
    cases["last_posted"] = grouped["created_at"].max()
    cases["tags"] = grouped["tag"].agg(lambda tags: {t for t in tags if t})
    cases["due_at"] = pd.to_datetime(cases["due_at"])
    return cases.reset_index().drop(columns=["raw", "tag", "created_at"])


def backdate_openings(store: Store, opened: dict[int, datetime]) -> None:
    """A demo case was opened when its first mention was posted (the demo loads six weeks at once, so
    the store opened them all now): its `created_at` and its 'opened' event move there."""
    with store.engine.begin() as c:
        for case_id, at in opened.items():
            at = pd.Timestamp(at).to_pydatetime()
            c.execute(queue_items.update().where(queue_items.c.id == int(case_id)).values(created_at=at))
            c.execute(case_events.update().where(case_events.c.case_id == int(case_id),
                                                 case_events.c.kind == "opened").values(at=at))


def newest_overdue(cases: pd.DataFrame, now: datetime) -> int | None:
    """The one recent case left unanswered past its SLA: the queue shows a breach to chase."""
    recent = cases[(cases["first_posted"] >= now - OPEN_FOR) & (cases["due_at"] <= now)]
    return None if recent.empty else int(recent.sort_values("first_posted").iloc[-1]["id"])


def plan(case: dict, rules: Rules, now: datetime, leave_unanswered: bool = False) -> Steps | None:
    """One case's steps, drawn from a generator seeded by its key; None: it waits in the queue."""
    opened = case["first_posted"].to_pydatetime()
    recent = opened >= now - OPEN_FOR
    if (recent and case["due_at"] > now) or leave_unanswered:
        return None                                # fresh work for Claim next
    rng = random.Random(f"demo-history:{case['case_key']}")
    calendar = calendar_of(rules.queue)
    band = band_of(rules, case["band"], case["priority"])
    agent = rng.choice(agents_for(rules, case))
    claim = add_working_time(opened, band.first_response * rng.uniform(0.05, 0.25), calendar)
    if case["status"] == "claimed":             # assigned when it was queued: that agent answers
        agent, claim = case["assignee"], None
    reason = next((DISMISSED_TAGS[t] for t in sorted(case["tags"]) if t in DISMISSED_TAGS), None)
    late = not recent and rng.random() < LATE_SHARE
    answered = add_working_time(opened, band.first_response * (rng.uniform(1.3, 2.5) if late else
                                                               rng.uniform(0.3, 0.95)), calendar)
    if answered >= now:
        return Steps(int(case["id"]), agent, claim=claim if claim and claim < now else None)
    if reason:
        return Steps(int(case["id"]), agent, claim=claim, resolve=answered, dismiss=reason)
    steps = Steps(int(case["id"]), agent, claim=claim, reply=answered, reply_text=reply_text(rules, case))
    closed = max(add_working_time(answered, (band.resolution or rules.queue.resolution_sla) * rng.uniform(0.1, 0.8),
                                  calendar), case["last_posted"].to_pydatetime() + timedelta(minutes=10))
    if recent or closed >= now - timedelta(minutes=5):
        return steps                               # answered, waiting on the customer
    return replace(steps, resolve=closed)


def band_of(rules: Rules, name: str | None, priority: int) -> Band:
    return next((b for b in rules.queue.bands if b.name == name), None) or rules.queue.band(int(priority))


def agents_for(rules: Rules, case: dict) -> tuple[str, ...]:
    """The members of the first team whose languages and brands take the case, else of any team."""
    brands = json.loads(case["brands"] or "[]")
    for team in rules.teams:
        if team.members and (not team.languages or case["lang"] in team.languages) and \
                (not team.brands or set(brands) & set(team.brands)):
            return tuple(team.members)
    members = tuple(m for team in rules.teams for m in team.members)
    return members or DEMO_AGENTS


def reply_text(rules: Rules, case: dict) -> str:
    """The reply an agent would send: the best template for the case, filled in."""
    brands = json.loads(case["brands"] or "[]")
    fits = templates_for(rules, case["intent"], case["category"], case["lang"])
    if not fits:
        return "Thanks, we're on it."
    return render(fits[0].text, case["author"], brands[0] if brands else None, int(case["id"]))


def play(store: Store, steps: Steps, counts: dict[str, int]) -> None:
    """The steps through the store's workflow, each at its time; a case that moved meanwhile is left."""
    try:
        if steps.claim:
            store.claim(steps.case_id, steps.agent, at=steps.claim)
            counts["claimed"] += 1
        if steps.dismiss:
            store.dismiss(steps.case_id, steps.agent, steps.dismiss, at=steps.resolve)
            counts["dismissed"] += 1
            return
        if steps.reply:
            store.replied(steps.case_id, steps.agent, steps.reply_text, at=steps.reply)
            counts["replied"] += 1
        if steps.resolve:
            store.resolve(steps.case_id, steps.agent, at=steps.resolve)
            counts["resolved"] += 1
    except QueueConflict as exc:   # an automation or an assignment acted on it first: its own story
        log.info("demo history: case %s left as it is (%s)", steps.case_id, exc)

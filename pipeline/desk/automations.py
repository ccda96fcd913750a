"""Automations: rules.yaml's `automations:` (when → then), run on a case as its mentions are classified.

Each enabled automation is tried in file order on every case that holds a freshly classified
mention; one that matches does its actions and is recorded in `case_automations`, so it fires once
per case: not again on a rerun, nor on the case's next mention, nor from a second process (the key
is the case and the automation's name, and the case row is locked while its automations run). An
automation sees the case as the ones before it left it: a `priority` action counts towards a later
`min_priority`, and once one dismisses the case the rest stop.

What fires is named three times: "automation: NAME" in the mention's `reasons` (the queue and
`ecoute classify`-style output show it), an 'automation' event on the case's timeline with the
actions, and the audit log. `notify` targets get a `case_notifications` row each, which
pipeline/desk/notify.py delivers. `dry_run` does the same matching on labels alone, with no store.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import groupby
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.mention import Labels, Mention
from pipeline.rules import Automation, Rules, Then
from pipeline.store import (OPEN_STATUSES, Store, case_automations, case_key, case_mentions, case_notifications,
                    classifications, error_line, mentions, queue_items, utcnow)

log = logging.getLogger(__name__)
ACTOR = "automation"


@dataclass(frozen=True)
class Facts:
    """What an automation's conditions are checked against: a mention, its labels, and its case's priority."""

    brands: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()          # the source type (twitter…) and the rules.yaml sources of that type
    lang: str | None = None
    intent: str | None = None
    category: str | None = None
    severity: str | None = None
    sentiment: str | None = None
    transparency: tuple[str, ...] = ()
    priority: int = 0                      # the case's priority
    followers: int | None = None
    text: str = ""
    title: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class CaseState:
    """The parts of a case that actions change."""

    status: str = "new"
    priority: int = 0
    assignee: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    template: str | None = None
    dismiss_reason: str | None = None


@dataclass(frozen=True)
class Fired:
    """One automation that fired on one case (case_id None in a dry run)."""

    automation: str
    case_id: int | None
    mention_key: str
    before: CaseState
    after: CaseState
    actions: dict[str, Any]


def source_names(rules: Rules, source_type: str) -> tuple[str, ...]:
    """A mention's source type and the rules.yaml sources of that type: `when.source` may name either.
    Mentions do not keep which configured source fetched them, so two sources of one type match alike."""
    return (source_type, *(s.name for s in rules.sources if s.type == source_type))


def facts_of(mention: Mention, labels: Labels, rules: Rules, priority: int | None = None) -> Facts:
    return Facts(brands=tuple(labels.brands), sources=source_names(rules, mention.source), lang=labels.lang,
                 intent=labels.intent, category=labels.category, severity=labels.severity,
                 sentiment=labels.sentiment, transparency=tuple(labels.transparency),
                 priority=labels.priority if priority is None else priority, followers=mention.author_followers,
                 text=mention.text or "", title=mention.title, author=mention.author)


def handle(name: str | None) -> str:
    """An author as compared: '@Dan', 'dan' and ' DAN' are one handle."""
    return (name or "").strip().lstrip("@").casefold()


@lru_cache(maxsize=256)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern:
    # as words: 'bag' matches "my bag!" but not "baggage"; a keyword may start with # or @
    return re.compile("|".join(rf"(?<!\w){re.escape(k.strip())}(?!\w)" for k in keywords if k.strip()),
                      re.IGNORECASE)


def _any_of(wanted: list[str], have: Iterable[str | None]) -> bool:
    return not wanted or bool({w.casefold() for w in wanted} & {h.casefold() for h in have if h})


def matches(automation: Automation, facts: Facts) -> bool:
    """Every condition given in `when` holds (a list: any of its values)."""
    when = automation.when
    return (_any_of(when.brand, facts.brands) and _any_of(when.source, facts.sources)
            and _any_of(when.lang, [facts.lang]) and _any_of(when.intent, [facts.intent])
            and _any_of(when.category, [facts.category]) and _any_of(when.severity, [facts.severity])
            and _any_of(when.sentiment, [facts.sentiment]) and _any_of(when.transparency, facts.transparency)
            and (when.min_priority is None or facts.priority >= when.min_priority)
            and (when.min_followers is None or (facts.followers or 0) >= when.min_followers)
            and (not when.keywords or bool(_keyword_pattern(tuple(when.keywords)).search(
                f"{facts.title or ''}\n{facts.text}")))
            and (not when.authors or handle(facts.author) in {handle(a) for a in when.authors}))


def actions_of(then: Then) -> dict[str, Any]:
    """The actions an automation takes, as shown on the timeline, in the audit log and by the dry run."""
    return {name: value for name, value in then.model_dump().items() if value not in (None, [], 0)}


def act(then: Then, case: CaseState) -> CaseState:
    """The case after an automation's actions (priority points are added, capped to 0..100)."""
    status, assignee, reason = case.status, case.assignee, case.dismiss_reason
    if then.assign:
        assignee, status = then.assign, "claimed" if status == "new" else status
    if then.dismiss and status in OPEN_STATUSES:
        status, reason = "dismissed", then.dismiss
    return replace(case, status=status, assignee=assignee, dismiss_reason=reason,
                   team=then.assign_team or case.team, priority=min(100, max(0, case.priority + then.priority)),
                   tags=tuple(dict.fromkeys([*case.tags, *then.tag])), template=then.template or case.template)


def firings(automations: list[Automation], facts: Facts, case: CaseState,
            done: set[str]) -> list[tuple[Automation, CaseState, CaseState]]:
    """The automations that fire on a case, in order, each with the case before and after it; `done`
    (the names already fired on this case) grows. A closed case stops the run."""
    out = []
    for automation in automations:
        if case.status not in OPEN_STATUSES:
            break
        if facts.priority != case.priority:
            facts = replace(facts, priority=case.priority)
        if automation.name in done or not matches(automation, facts):
            continue
        after = act(automation.then, case)
        out.append((automation, case, after))
        done.add(automation.name)
        case = after
    return out


def enabled(rules: Rules) -> list[Automation]:
    return [a for a in rules.automations if a.enabled]


# -- on the store --------------------------------------------------------------------------------

def run_automations(store: Store, rules: Rules, mention_keys: Iterable[str]) -> list[Fired]:
    """Run the enabled automations on the cases holding these (freshly classified) mentions; one
    transaction per case. Returns what fired (nothing that had fired on a case before)."""
    automations = enabled(rules)
    keys = list(dict.fromkeys(mention_keys))
    if not automations or not keys:
        return []
    groups = {case_id: list(rows) for case_id, rows in groupby(_case_rows(store, keys), key=lambda r: r["case_id"])}
    priorities, done = _priorities_and_done(store, list(groups))
    fired: list[Fired] = []
    for case_id, rows in groups.items():
        # most cases match nothing new: only those that might take the case's lock and a transaction
        state = CaseState(priority=priorities.get(case_id, 0))
        if any(firings(automations, _facts_of_row(row, rules), state, set(done.get(case_id, ()))) for row in rows):
            try:
                fired += _run_on_case(store, rules, automations, case_id, rows)
            except sa.exc.SQLAlchemyError as exc:   # one case's trouble (a lock timeout) never stops the batch
                log.error("automations on case %s failed, nothing of them kept: %s", case_id, error_line(exc))
    return fired


def _priorities_and_done(store: Store, case_ids: list[int]) -> tuple[dict[int, int], dict[int, set[str]]]:
    """Each case's priority and the automations already fired on it (a first look, before any lock)."""
    priorities: dict[int, int] = {}
    done: dict[int, set[str]] = {}
    with store.engine.connect() as c:
        for start in range(0, len(case_ids), 500):
            chunk = case_ids[start:start + 500]
            priorities.update(c.execute(sa.select(queue_items.c.id, queue_items.c.priority)
                                        .where(queue_items.c.id.in_(chunk))).all())
            for case_id, name in c.execute(sa.select(case_automations.c.case_id, case_automations.c.automation)
                                           .where(case_automations.c.case_id.in_(chunk))):
                done.setdefault(case_id, set()).add(name)
    return priorities, done


def _case_rows(store: Store, keys: list[str]) -> list[dict]:
    """The mentions among `keys` that are in a case, with their labels, by case then time."""
    out = []
    for start in range(0, len(keys), 500):
        query = (sa.select(case_mentions.c.case_id, mentions.c.key, mentions.c.source, mentions.c.author,
                           mentions.c.author_followers, mentions.c.title, mentions.c.text, mentions.c.created_at,
                           classifications.c.lang, classifications.c.brands, classifications.c.intent,
                           classifications.c.category, classifications.c.severity, classifications.c.sentiment,
                           classifications.c.transparency)
                 .select_from(case_mentions.join(mentions, mentions.c.key == case_mentions.c.mention_key)
                              .join(classifications, classifications.c.mention_key == mentions.c.key))
                 .where(case_mentions.c.mention_key.in_(keys[start:start + 500]), mentions.c.deleted_at.is_(None)))
        with store.engine.connect() as c:
            out += [dict(row._mapping) for row in c.execute(query)]
    return sorted(out, key=lambda r: (r["case_id"], r["created_at"] is None, r["created_at"] or 0, r["key"]))


def _facts_of_row(row: dict, rules: Rules) -> Facts:
    return Facts(brands=tuple(json.loads(row["brands"] or "[]")), sources=source_names(rules, row["source"]),
                 lang=row["lang"], intent=row["intent"], category=row["category"], severity=row["severity"],
                 sentiment=row["sentiment"], transparency=tuple(json.loads(row["transparency"] or "[]")),
                 followers=row["author_followers"], text=row["text"] or "", title=row["title"], author=row["author"])


def _run_on_case(store: Store, rules: Rules, automations: list[Automation], case_id: int,
                 rows: list[dict]) -> list[Fired]:
    with store.engine.begin() as c:
        # a no-op write first: it takes SQLite's write lock and PostgreSQL's row lock before anything is
        # read, so a second process waits here and then sees what this one fired
        c.execute(queue_items.update().where(queue_items.c.id == case_id)
                  .values(updated_at=queue_items.c.updated_at))
        case = _case_state(c, case_id)
        if case is None:
            return []
        done = set(c.scalars(sa.select(case_automations.c.automation).where(case_automations.c.case_id == case_id)))
        fired = []
        for row in rows:
            for automation, before, after in firings(automations, _facts_of_row(row, rules), case, done):
                if _record_firing(store, c, case_id, row["key"], automation, before, after):
                    fired.append(Fired(automation.name, case_id, row["key"], before, after,
                                       actions_of(automation.then)))
                    case = after
        return fired


def _case_state(c: Connection, case_id: int) -> CaseState | None:
    row = c.execute(sa.select(queue_items).where(queue_items.c.id == case_id)).mappings().first()
    if row is None:
        return None
    return CaseState(status=row["status"], priority=row["priority"], assignee=row["assignee"], team=row["team"],
                     tags=tuple(json.loads(row["tags"] or "[]")), template=row["template"],
                     dismiss_reason=row["dismiss_reason"])


def _record_firing(store: Store, c: Connection, case_id: int, mention_key: str, automation: Automation,
                   before: CaseState, after: CaseState) -> bool:
    """Claim the (case, automation) pair, then apply and record the actions; False if it had fired already."""
    now = utcnow()
    claim = store._upsert(case_automations, [{"case_id": case_id, "automation": automation.name,
                                              "fired_at": now, "mention_key": mention_key}],
                          ["case_id", "automation"], update=False)
    # RETURNING, not rowcount: PostgreSQL's driver reports -1 for an INSERT … ON CONFLICT DO NOTHING
    if c.execute(claim.returning(case_automations.c.case_id)).first() is None:
        return False
    c.execute(queue_items.update().where(queue_items.c.id == case_id).values(**_changes(before, after, now)))
    _add_reason(c, mention_key, f"automation: {automation.name}")
    actions = actions_of(automation.then)
    if automation.then.notify:
        c.execute(store._upsert(case_notifications, [
            {"case_id": case_id, "kind": "automation", "name": automation.name, "target": target,
             "created_at": now, "attempts": 0} for target in dict.fromkeys(automation.then.notify)],
            ["case_id", "kind", "name", "target"], update=False))
    detail = {"automation": automation.name, "actions": actions}
    if after.priority != before.priority:
        detail["priority"] = {"before": before.priority, "after": after.priority}
    store._event(c, case_id, ACTOR, "automation", mention_key, detail=detail)
    store._audit(c, ACTOR, "automation", mention_key=mention_key, queue_item_id=case_id, detail=detail)
    return True


def _changes(before: CaseState, after: CaseState, now) -> dict[str, Any]:
    values: dict[str, Any] = {"updated_at": now}
    for name in ("status", "priority", "assignee", "team", "template", "dismiss_reason"):
        if getattr(after, name) != getattr(before, name):
            values[name] = getattr(after, name)
    if after.tags != before.tags:
        values["tags"] = json.dumps(list(after.tags), ensure_ascii=False)
    if before.status == "new" and after.status == "claimed":
        values["claimed_at"] = now
    if after.status == "dismissed" and before.status != "dismissed":
        values["resolved_at"] = now
    return values


def _add_reason(c: Connection, mention_key: str, reason: str) -> None:
    current = c.scalar(sa.select(classifications.c.reasons).where(classifications.c.mention_key == mention_key))
    reasons = json.loads(current or "[]")
    if reason not in reasons:
        c.execute(classifications.update().where(classifications.c.mention_key == mention_key)
                  .values(reasons=json.dumps([*reasons, reason], ensure_ascii=False)))


# -- the dry run: `ecoute rules test` --------------------------------------------------------------

@dataclass(frozen=True)
class Trial:
    """What the automations would do on one mention: `queued` False when it would get no case."""

    mention: Mention
    labels: Labels
    queued: bool
    priority_before: int
    priority_after: int
    fired: tuple[Fired, ...]
    earlier: tuple[str, ...] = ()       # automations that fired on the same case at an earlier mention


def dry_run(pairs: Iterable[tuple[Mention, Labels]], rules: Rules) -> list[Trial]:
    """Which automations would fire on these mentions, with nothing stored or sent. Mentions of one
    author in one thread share a case, as in the store, so an automation fires once on them."""
    automations = enabled(rules)
    cases: dict[str, tuple[CaseState, set[str]]] = {}
    out = []
    for mention, labels in pairs:
        if not labels.needs_response or labels.priority < rules.queue.min_priority:
            out.append(Trial(mention, labels, False, labels.priority, labels.priority, ()))
            continue
        key = case_key(mention.key, {"author": mention.author, "thread_id": mention.thread_id,
                                     "source": mention.source})
        case, done = cases.get(key, (CaseState(priority=0), set()))
        if case.status not in OPEN_STATUSES:      # a new mention reopens a closed case (store.save_labels)
            case = replace(case, status="claimed" if case.assignee else "new", dismiss_reason=None)
        case = replace(case, priority=max(case.priority, labels.priority))
        before, earlier = case.priority, tuple(a.name for a in automations if a.name in done)
        fired = []
        for automation, was, after in firings(automations, facts_of(mention, labels, rules), case, done):
            fired.append(Fired(automation.name, None, mention.key, was, after, actions_of(automation.then)))
            case = after
        cases[key] = (case, done)
        out.append(Trial(mention, labels, True, before, case.priority, tuple(fired), earlier))
    return out


def summary(trials: list[Trial], rules: Rules) -> dict[str, int]:
    """How many cases each automation would fire on (every automation listed, disabled ones excluded)."""
    counts = {a.name: 0 for a in enabled(rules)}
    for trial in trials:
        for fired in trial.fired:
            counts[fired.automation] += 1
    return counts


def describe(actions: dict[str, Any]) -> str:
    """Actions in words: 'team paris, tag luggage, notify care-slack'."""
    words = {"assign_team": "team", "assign": "assign to", "priority": "priority", "tag": "tag",
             "notify": "notify", "template": "suggest template", "dismiss": "dismiss as"}
    parts = []
    for name, value in actions.items():
        shown = ", ".join(value) if isinstance(value, list) else f"{value:+d}" if name == "priority" else str(value)
        parts.append(f"{words.get(name, name)} {shown}")
    return ", ".join(parts)

"""Teams and automatic assignment: whose case it is, and which available agent gets it.

A case's team is the one an automation gave it (queue_items.team), else the first team in rules.yaml
whose `languages` and `brands` match the case (an empty list matches any). Under `assignment:
round_robin` or `least_open` (a team's own, else queue.assignment), `assign_cases` gives each new,
unassigned, unsnoozed case to one of the team's members (no team: every enabled user who may claim)
who is 'available' (pipeline/desk/users.py), enabled, and holds fewer than `max_open_per_agent` open cases.
Round robin continues after the last agent the team's cases went to, read back from the store's
'assigned' events, so a restart continues the rotation; least_open takes the agent holding the fewest
open cases, ties in round-robin order. Nobody available: the case waits, unassigned, for Claim next.

Each assignment is one conditional UPDATE (status still 'new', nobody holding it), like Store.claim,
so two runs at once on PostgreSQL never give one case twice.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipeline.rules import Rules, Team
from pipeline.store import OPEN_STATUSES, Store, _naive, case_events, classifications, queue_items, utcnow

AUTOMATIC = ("round_robin", "least_open")


@dataclass(frozen=True)
class Pool:
    """Who may get a team's cases (in rotation order), how, and how many open cases each may hold."""
    team: str | None
    policy: str
    rotation: tuple[str, ...]
    max_open: int | None


def team_of(rules: Rules, case_row: Any) -> str | None:
    """The case's team: the one already on it (an automation's assign_team), else the first team in
    rules.yaml whose languages and brands (empty: any) match the case's language and brands."""
    row = _as_dict(case_row)
    if row.get("team"):
        return row["team"]
    brands = row.get("brands") or []
    brands = json.loads(brands) if isinstance(brands, str) else list(brands)
    for team in rules.teams:
        if team.languages and row.get("lang") not in team.languages:
            continue
        if team.brands and not set(team.brands) & set(brands):
            continue
        return team.name
    return None


def teams_of_agent(rules: Rules | None, agent: str) -> list[str]:
    """The teams `agent` is a member of, in rules.yaml order: Claim next takes their cases first."""
    return [t.name for t in (rules.teams if rules else []) if agent in t.members]


def policy_of(rules: Rules, team: str | None) -> str:
    """'manual', 'round_robin' or 'least_open': the team's own assignment, else queue.assignment."""
    own = _team(rules, team)
    return (own.assignment if own and own.assignment else None) or rules.queue.assignment


def assign_cases(store: Store, rules: Rules, now: datetime | None = None) -> dict[int, str]:
    """Route every new, unassigned, unsnoozed case: set its team, and give it to an available agent where
    the policy is automatic. Returns {case id: agent} for the cases assigned by this run."""
    now = _naive(now) or utcnow()
    people = _people(store)
    open_counts = _open_counts(store)
    pools: dict[str | None, Pool] = {}
    last: dict[str | None, str | None] = {}
    done: dict[int, str] = {}
    for row in _waiting(store, now):
        team = team_of(rules, row)
        if team not in pools:
            pools[team] = _pool(rules, team, people)
            last[team] = _last_assigned(store, team)
        pool = pools[team]
        agent = pick_agent(pool, open_counts, last[team], people) if pool.policy in AUTOMATIC else None
        if agent is not None and _give(store, row["id"], agent, pool, now):     # sets the team too
            open_counts[agent] += 1
            last[team] = agent
            done[int(row["id"])] = agent
        elif team is not None and team != row["team"]:
            _set_team(store, row["id"], team)
    return done


def pick_agent(pool: Pool, open_counts: Counter, last: str | None, people: dict[str, dict]) -> str | None:
    """The agent the next case goes to, or None when nobody in the pool may take one now."""
    order = _rotation_after(pool.rotation, last)
    ready = [name for name in order if _can_take(people.get(name), open_counts[name], pool.max_open)]
    if not ready:
        return None
    if pool.policy == "least_open":
        return min(ready, key=lambda name: (open_counts[name], ready.index(name)))
    return ready[0]


def _rotation_after(rotation: tuple[str, ...], last: str | None) -> list[str]:
    """The rotation starting with the agent after `last` (from the top when `last` is not in it)."""
    start = rotation.index(last) + 1 if last in rotation else 0
    return list(rotation[start:] + rotation[:start])


def _can_take(person: dict | None, held: int, max_open: int | None) -> bool:
    """A user who exists, is enabled, may claim, is 'available' and is below her open-case limit."""
    from pipeline.desk.users import can

    return (person is not None and not person["disabled"] and can(person["role"], "claim")
            and person["availability"] == "available" and (max_open is None or held < max_open))


def _pool(rules: Rules, team: str | None, people: dict[str, dict]) -> Pool:
    own = _team(rules, team)
    if own is not None:
        rotation = tuple(dict.fromkeys(own.members))
    else:
        from pipeline.desk.users import can

        rotation = tuple(sorted(name for name, p in people.items() if not p["disabled"] and can(p["role"], "claim")))
    max_open = (own.max_open_per_agent if own and own.max_open_per_agent else None) or rules.queue.max_open_per_agent
    return Pool(team=team, policy=policy_of(rules, team), rotation=rotation, max_open=max_open)


def _team(rules: Rules, name: str | None) -> Team | None:
    return next((t for t in rules.teams if t.name == name), None) if name else None


def _people(store: Store) -> dict[str, dict]:
    from pipeline.desk.users import users

    with store.engine.connect() as c:
        rows = c.execute(sa.select(users.c.name, users.c.role, users.c.disabled, users.c.availability))
        return {row.name: {"role": row.role, "disabled": bool(row.disabled), "availability": row.availability}
                for row in rows}


def _open_counts(store: Store) -> Counter:
    """Open cases (new, claimed, replied) each agent holds."""
    query = (sa.select(queue_items.c.assignee, sa.func.count())
             .where(queue_items.c.status.in_(OPEN_STATUSES), queue_items.c.assignee.is_not(None))
             .group_by(queue_items.c.assignee))
    with store.engine.connect() as c:
        return Counter({name: int(n) for name, n in c.execute(query)})


def _waiting(store: Store, now: datetime) -> list[dict]:
    """New, unassigned cases not snoozed, in queue order, with their latest mention's language and brands."""
    query = (sa.select(queue_items.c.id, queue_items.c.team, classifications.c.lang, classifications.c.brands)
             .select_from(queue_items.outerjoin(classifications,
                                                classifications.c.mention_key == queue_items.c.mention_key))
             .where(queue_items.c.status == "new", queue_items.c.assignee.is_(None),
                    sa.or_(queue_items.c.snoozed_until.is_(None), queue_items.c.snoozed_until <= now))
             .order_by(queue_items.c.priority.desc(), queue_items.c.due_at.asc(), queue_items.c.id.asc()))
    with store.engine.connect() as c:
        return [dict(row._mapping) for row in c.execute(query)]


def _set_team(store: Store, case_id: int, team: str | None) -> None:
    """The routed team goes on the case (Claim next and the queue's Team filter read it); never overwrites one."""
    with store.engine.begin() as c:
        c.execute(queue_items.update().where(queue_items.c.id == case_id, queue_items.c.team.is_(None))
                  .values(team=team))


def _last_assigned(store: Store, team: str | None) -> str | None:
    """The agent this team's last automatic assignment went to (its 'assigned' event), so a restart
    continues the rotation rather than starting it over."""
    same_team = queue_items.c.team.is_(None) if team is None else queue_items.c.team == team
    query = (sa.select(case_events.c.detail)
             .select_from(case_events.join(queue_items, queue_items.c.id == case_events.c.case_id))
             .where(case_events.c.kind == "assigned", same_team)
             .order_by(case_events.c.id.desc()).limit(1))
    with store.engine.connect() as c:
        detail = c.scalar(query)
    return json.loads(detail).get("to") if detail else None


def _give(store: Store, case_id: int, agent: str, pool: Pool, now: datetime) -> bool:
    """Assign one case if it is still new and nobody's; the timeline and audit log say by which policy."""
    detail = {"to": agent, "policy": pool.policy, "team": pool.team}
    with store.engine.begin() as c:
        result = c.execute(queue_items.update()
                           .where(queue_items.c.id == case_id, queue_items.c.status == "new",
                                  queue_items.c.assignee.is_(None))
                           .values(status="claimed", assignee=agent, claimed_at=now, updated_at=now,
                                   team=pool.team))
        if result.rowcount != 1:
            return False           # claimed by an agent, or by another run, in the meantime
        store._did(c, "system", "assigned", case_id, detail=detail)
    return True


def _as_dict(row: Any) -> dict:
    if isinstance(row, dict):
        return row
    if hasattr(row, "_asdict"):
        return row._asdict()
    if hasattr(row, "to_dict"):
        return row.to_dict()
    return dict(row)

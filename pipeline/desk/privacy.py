"""Personal data: erasure on request (`erase`) and a retention period (`prune`), over the store's tables.

`erase` removes everything stored about one author: their mentions, the labels of those mentions,
the cases made of them with every event on them (replies and notes quote the person), their links
in other cases, notes on other cases that name them, their keys in alerts' mention lists, and
fast-growing-post alerts about their posts. Open cases go too: the person asked. Posts by others
that name the person are the others' and stay (`ecoute delete --purge` removes one by key). The
audit log keeps who asked, when and how many rows went, never the handle or any text; its entries
that named an erased mention lose that key. Erased keys are remembered (`tombstones`: the key,
never the text), so a later copy of an erased post, fetched or imported again, is not stored.
Erasure follows the link: handles an agent linked as one person (pipeline/desk/customers.py) are erased
with the one asked for, and the links go, as do the handles named in link and unlink audit entries.

`prune` removes mentions posted (or, without a date, fetched) before the retention period, with
the same things hanging off them, except mentions of open cases: an open case is never pruned, and
a closed case is removed only once all its mentions are old. Alerts whose window ended before the
cut-off go too. The pre-aggregated trend counts (pipeline/analytics/__init__.py) hold no personal data and stay.

Both run in one transaction: all of it or nothing. `dry_run` counts and rolls back.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.store import (OPEN_STATUSES, Store, _naive, audit_log, case_automations, case_events, case_mentions,
                    case_notifications, classifications, mentions, queue_items, utcnow)
from pipeline.store.alerts import alert_deliveries, alerts

CHUNK = 500
ERASED = "[erased]"


@dataclass
class Removal:
    """Rows removed and rows changed (a key unlinked, a list shortened) per table; `dry_run`: nothing kept."""
    rows: Counter = field(default_factory=Counter)
    changed: Counter = field(default_factory=Counter)
    dry_run: bool = False
    linked: list[str] = field(default_factory=list)     # other handles erased because they were linked

    def line(self) -> str:
        def listed(counts: Counter) -> str:
            return ", ".join(f"{n} {table}" for table, n in sorted(counts.items()) if n)

        line = ("would remove " if self.dry_run else "removed ") + (listed(self.rows) or "nothing")
        line += (f"; {'would change' if self.dry_run else 'changed'} {listed(self.changed)}"
                 if +self.changed else "")
        if self.linked:
            line += (f"; {'would follow' if self.dry_run else 'followed'} the link to {len(self.linked)} other "
                     f"handle{'s' if len(self.linked) > 1 else ''} of the same person: {', '.join(self.linked)}")
        return line

    def counts(self) -> dict:
        return {"removed": dict(+self.rows), "changed": dict(+self.changed)}


def handle_variants(handle: str) -> list[str]:
    """What an author may be stored as, lower-cased: 'dan', '@dan', 'u/dan' all name the same person."""
    bare = handle.strip().lower().removeprefix("u/").removeprefix("/u/").lstrip("@")
    if not bare:
        raise ValueError("give the author's handle, such as @dan or u/dan")
    return [bare, f"@{bare}", f"u/{bare}"]


def erase(store: Store, author: str, source: str | None = None, actor: str = "cli", dry_run: bool = False) -> Removal:
    """Remove every trace of `author` (on `source` only, when given: twitter, reddit, mastodon…)."""
    variants = handle_variants(author)
    query = sa.select(mentions.c.key).where(sa.func.lower(mentions.c.author).in_(variants))
    if source:
        query = query.where(mentions.c.source == source)
    with _unit(store, dry_run) as (c, removal):
        removal.linked = _linked_handles(c, variants[0], source)
        if removal.linked:
            from pipeline.desk.customers import by_handles

            query = sa.select(mentions.c.key).where(sa.or_(query.whereclause, by_handles(removal.linked)))
        keys = list(c.scalars(query))
        remove_mentions(c, keys, removal)
        quoted = variants[1:] + [v for h in removal.linked for v in handle_variants(h.split(":", 1)[1])[1:]]
        _scrub_quotes(c, sorted(set(quoted)), removal)
        _unlink(c, variants[0], source, removal)
        if not dry_run:
            store.bury(c, keys, "erased")     # a later copy of an erased post is not stored again
            store._audit(c, actor, "erase", detail={"source": source, "linked_handles": len(removal.linked),
                                                    **removal.counts()})
    return removal


def _own_handles(c: Connection, bare: str, source: str | None) -> list[str]:
    """The linked handles ('source:author') of the author asked for: on `source`, or on any source."""
    from pipeline.store import person_links

    if source:
        wanted = person_links.c.handle == f"{source.strip().lower()}:{bare}"
    else:
        wanted = person_links.c.handle.endswith(f":{bare}", autoescape=True)
    return [h for h in c.scalars(sa.select(person_links.c.handle).where(wanted)) if h.split(":", 1)[1] == bare]


def _linked_handles(c: Connection, bare: str, source: str | None) -> list[str]:
    """The other handles of the same person, which erasure follows."""
    from pipeline.store import person_links

    own = _own_handles(c, bare, source)
    people = sa.select(person_links.c.person).where(person_links.c.handle.in_(own))
    return sorted(set(c.scalars(sa.select(person_links.c.handle).where(person_links.c.person.in_(people))))
                  - set(own))


def _unlink(c: Connection, bare: str, source: str | None, removal: Removal) -> None:
    """Drop the erased person's links, and the handles named in link and unlink audit entries about them."""
    from pipeline.store import person_links

    gone = set(_own_handles(c, bare, source)) | set(removal.linked)
    if not gone:
        return
    removal.rows["person_links"] += c.execute(person_links.delete().where(person_links.c.handle.in_(gone))).rowcount
    entries = c.execute(sa.select(audit_log.c.id, audit_log.c.detail)
                        .where(audit_log.c.action.in_(("link_handles", "unlink_handle")))).all()
    for entry in entries:
        detail = json.loads(entry.detail or "{}")
        named = detail.get("handles", []) + [detail.get("handle")]
        if gone.intersection(named):
            removal.changed["audit_log"] += c.execute(audit_log.update().where(audit_log.c.id == entry.id).values(
                detail=json.dumps({key: ERASED for key in detail}))).rowcount


def prune(store: Store, retention: timedelta | int, now: datetime | None = None, actor: str = "cli",
          dry_run: bool = False) -> Removal:
    """Remove mentions older than `retention` (days, or a timedelta), sparing open cases."""
    retention = timedelta(days=retention) if isinstance(retention, int) else retention
    cutoff = (_naive(now) or utcnow()) - retention
    posted = sa.func.coalesce(mentions.c.created_at, mentions.c.fetched_at)
    open_keys = (sa.select(case_mentions.c.mention_key)
                 .join(queue_items, queue_items.c.id == case_mentions.c.case_id)
                 .where(queue_items.c.status.in_(OPEN_STATUSES)))
    open_heads = sa.select(queue_items.c.mention_key).where(queue_items.c.status.in_(OPEN_STATUSES))
    query = sa.select(mentions.c.key).where(posted < cutoff, mentions.c.key.not_in(open_keys),
                                            mentions.c.key.not_in(open_heads))
    with _unit(store, dry_run) as (c, removal):
        remove_mentions(c, list(c.scalars(query)), removal)
        old = sa.select(alerts.c.id).where(alerts.c.window_end < cutoff)
        removal.rows["alert_deliveries"] += c.execute(
            alert_deliveries.delete().where(alert_deliveries.c.alert_id.in_(old))).rowcount
        removal.rows["alerts"] += c.execute(alerts.delete().where(alerts.c.window_end < cutoff)).rowcount
        if not dry_run:
            store._audit(c, actor, "prune", detail={"before": cutoff.isoformat(timespec="seconds"),
                                                    **removal.counts()})
    return removal


class _unit:
    """One transaction yielding (connection, Removal); rolled back when dry_run or on error."""

    def __init__(self, store: Store, dry_run: bool):
        self.store, self.removal = store, Removal(dry_run=dry_run)

    def __enter__(self):
        self.conn = self.store.engine.connect()
        self.tx = self.conn.begin()
        return self.conn, self.removal

    def __exit__(self, kind, *_):
        try:
            if kind is None and not self.removal.dry_run:
                self.tx.commit()
            else:
                self.tx.rollback()
        finally:
            self.conn.close()


def remove_mentions(c: Connection, keys: list[str], removal: Removal) -> None:
    """Remove these mentions and what hangs off them; cases left with none of their mentions go whole."""
    if not keys:
        return
    rows, changed = removal.rows, removal.changed
    gone = set(keys)
    touched = _cases_of(c, keys)
    members = _members(c, touched)
    whole = [case for case in touched if members.get(case, set()) <= gone]
    whole += _chunked_scalars(c, lambda chunk: sa.select(queue_items.c.id).where(
        queue_items.c.mention_key.in_(chunk), queue_items.c.id.not_in(touched)), keys)
    partial = [case for case in touched if case not in set(whole)]
    for chunk in _chunks(whole):
        rows["case_events"] += c.execute(case_events.delete().where(case_events.c.case_id.in_(chunk))).rowcount
        for table in (case_automations, case_notifications):     # they point at the case (0011)
            rows[table.name] += c.execute(table.delete().where(table.c.case_id.in_(chunk))).rowcount
        rows["case_mentions"] += c.execute(case_mentions.delete().where(case_mentions.c.case_id.in_(chunk))).rowcount
        rows["queue_items"] += c.execute(queue_items.delete().where(queue_items.c.id.in_(chunk))).rowcount
    for case in partial:
        _trim_case(c, case, members[case] - gone, gone, removal)
    for chunk in _chunks(keys):
        rows["case_mentions"] += c.execute(case_mentions.delete().where(case_mentions.c.mention_key.in_(chunk))).rowcount
        rows["classifications"] += c.execute(
            classifications.delete().where(classifications.c.mention_key.in_(chunk))).rowcount
        changed["audit_log"] += c.execute(audit_log.update().where(audit_log.c.mention_key.in_(chunk))
                                       .values(mention_key=None)).rowcount
        rows["mentions"] += c.execute(mentions.delete().where(mentions.c.key.in_(chunk))).rowcount
    _scrub_alerts(c, gone, removal)


def _trim_case(c: Connection, case: int, left: set[str], gone: set[str], removal: Removal) -> None:
    """A case that keeps other mentions: drop the events about the removed ones, point it at the newest left."""
    removal.rows["case_events"] += c.execute(case_events.delete().where(case_events.c.case_id == case,
                                                                        case_events.c.mention_key.in_(gone))).rowcount
    newest = c.scalar(sa.select(mentions.c.key).where(mentions.c.key.in_(left))
                      .order_by(sa.func.coalesce(mentions.c.created_at, mentions.c.fetched_at).desc()).limit(1))
    removal.changed["queue_items"] += c.execute(queue_items.update().where(queue_items.c.id == case,
                                                                queue_items.c.mention_key.in_(gone))
                                     .values(mention_key=newest, updated_at=utcnow())).rowcount


def _scrub_quotes(c: Connection, handles: list[str], removal: Removal) -> None:
    """Notes and replies on any case that name the person (@dan, u/dan, not @daniel) lose their text."""
    pattern = re.compile("|".join(rf"(?<![\w@/]){re.escape(h)}(?![\w@])" for h in handles), re.IGNORECASE)
    found = set()
    for handle in handles:
        query = sa.select(case_events.c.id, case_events.c.text).where(
            sa.func.lower(case_events.c.text).contains(handle, autoescape=True))
        found |= {row.id for row in c.execute(query) if pattern.search(row.text)}
    for chunk in _chunks(sorted(found)):
        removal.changed["case_events"] += c.execute(case_events.update().where(case_events.c.id.in_(chunk))
                                                    .values(text=ERASED)).rowcount


def _scrub_alerts(c: Connection, gone: set[str], removal: Removal) -> None:
    """Drop erased keys from alerts' mention lists; an alert about one of the posts goes whole."""
    for alert in c.execute(sa.select(alerts.c.id, alerts.c.subject, alerts.c.mention_keys)).all():
        listed = json.loads(alert.mention_keys or "[]")
        if alert.subject in gone:
            c.execute(alert_deliveries.delete().where(alert_deliveries.c.alert_id == alert.id))
            removal.rows["alerts"] += c.execute(alerts.delete().where(alerts.c.id == alert.id)).rowcount
        elif gone.intersection(listed):
            kept = [key for key in listed if key not in gone]
            removal.changed["alerts"] += c.execute(alerts.update().where(alerts.c.id == alert.id)
                                        .values(mention_keys=json.dumps(kept))).rowcount


def _cases_of(c: Connection, keys: list[str]) -> list[int]:
    return sorted(set(_chunked_scalars(c, lambda chunk: sa.select(case_mentions.c.case_id)
                                       .where(case_mentions.c.mention_key.in_(chunk)), keys)))


def _members(c: Connection, cases: list[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for chunk in _chunks(cases):
        for case, key in c.execute(sa.select(case_mentions.c.case_id, case_mentions.c.mention_key)
                                   .where(case_mentions.c.case_id.in_(chunk))):
            out.setdefault(case, set()).add(key)
    return out


def _chunked_scalars(c: Connection, query, values: list) -> list:
    return [value for chunk in _chunks(values) for value in c.scalars(query(chunk))]


def _chunks(values: list) -> Iterable[list]:
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]

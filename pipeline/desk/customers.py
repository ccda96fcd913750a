"""The customer, not only the thread: an author's other mentions and cases, across threads and sources.

A handle is 'source:author' ('twitter:dan', 'reddit:dan_b', 'mastodon:dan@mastodon.social'), the author
lower-cased without its '@' or 'u/', as cases key them (store.case_key). An agent who knows two handles
are one person links them (`link_handles`, audited); a person is the set of handles linked together
(table person_links: handle → the person's key, itself one of the handles). The history of any of them
is the history of all. Erasure follows the link: `ecoute erase` of one handle erases every handle
linked to it, and the links (pipeline/desk/privacy.py).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.desk.privacy import handle_variants
from pipeline.store import (OPEN_STATUSES, Store, _naive, case_mentions, classifications, mentions, person_links,
                    queue_items, utcnow)

HISTORY_ROWS = 200          # the newest mentions shown; the counts cover them all


class HandleError(ValueError):
    """A handle is not 'source:author', or cannot be linked or unlinked as asked."""


def handle_of(source: str, author: str) -> str:
    """The handle of an author on a source: 'twitter:dan' for ('twitter', '@Dan')."""
    source = (source or "").strip().lower()
    if not source:
        raise HandleError("a handle needs its source, such as 'twitter:dan'")
    try:
        bare = handle_variants(author or "")[0]
    except ValueError:
        raise HandleError(f"a handle needs an author after its source, such as '{source}:dan'") from None
    return f"{source}:{bare}"


def parse_handle(handle: str) -> tuple[str, str]:
    """('twitter', 'dan') from 'twitter:@Dan'; refuses anything that is not 'source:author'."""
    source, sep, author = (handle or "").strip().partition(":")
    if not sep or not source.strip() or not author.strip():
        raise HandleError(f"a handle is 'source:author', such as 'twitter:dan' or 'reddit:dan_b'; got {handle!r}")
    normal = handle_of(source, author)
    return normal.split(":", 1)[0], normal.split(":", 1)[1]


def linked_handles(conn: Connection, handle: str) -> list[str]:
    """Every handle of the person `handle` belongs to, itself included, sorted."""
    person = conn.scalar(sa.select(person_links.c.person).where(person_links.c.handle == handle))
    if person is None:
        return [handle]
    return sorted(conn.scalars(sa.select(person_links.c.handle).where(person_links.c.person == person)))


def link_handles(store: Store, handle_a: str, handle_b: str, actor: str) -> list[str]:
    """Say `handle_a` and `handle_b` are one person (merging the people they already belong to);
    returns the person's handles. Audited."""
    a, b = (":".join(parse_handle(h)) for h in (handle_a, handle_b))
    if a == b:
        raise HandleError(f"{a!r} and {b!r} are the same handle")
    now = utcnow()
    with store.engine.begin() as c:
        person_a, person_b = (c.scalar(sa.select(person_links.c.person).where(person_links.c.handle == h))
                              for h in (a, b))
        person = person_a or person_b or a
        for other in {person_a, person_b} - {None, person}:       # two people become one
            c.execute(person_links.update().where(person_links.c.person == other).values(person=person))
        for handle, had in ((a, person_a), (b, person_b)):
            if had is None:
                c.execute(person_links.insert().values(handle=handle, person=person, linked_by=actor, linked_at=now))
        store._audit(c, actor, "link_handles", detail={"handles": [a, b]})
        return linked_handles(c, a)


def unlink_handle(store: Store, handle: str, actor: str) -> list[str]:
    """Take `handle` out of its person; returns the handles left linked (none when only one was left,
    since a person of one handle is just that handle). Audited."""
    h = ":".join(parse_handle(handle))
    with store.engine.begin() as c:
        person = c.scalar(sa.select(person_links.c.person).where(person_links.c.handle == h))
        if person is None:
            raise HandleError(f"{h!r} is not linked to any other handle")
        c.execute(person_links.delete().where(person_links.c.handle == h))
        left = sorted(c.scalars(sa.select(person_links.c.handle).where(person_links.c.person == person)))
        if len(left) < 2:
            c.execute(person_links.delete().where(person_links.c.person == person))
            left = []
        elif person == h:               # the key named the handle just unlinked: re-key, so it is no longer stored
            c.execute(person_links.update().where(person_links.c.person == person).values(person=left[0]))
        store._audit(c, actor, "unlink_handle", detail={"handle": h})
    return left


def by_handles(handles: list[str]):
    """The WHERE clause for mentions written under any of these handles (each source's author variants)."""
    clauses = []
    for handle in handles:
        source, author = handle.split(":", 1)
        clauses.append((mentions.c.source == source) & sa.func.lower(mentions.c.author).in_(handle_variants(author)))
    return sa.or_(sa.false(), *clauses)


def customer_history(store: Store, source: str, author: str, exclude_case: int | None = None,
                     now: datetime | None = None) -> dict:
    """The author's (and linked handles') mentions and cases, newest first, and counts.

    Returns {"handles", "counts", "mentions", "cases"}: `counts` covers everything (complaints this
    calendar month in UTC, open cases, last sentiment, first seen, mentions, cases); the two tables
    leave out `exclude_case` (the case being read) and its mentions, and show the newest HISTORY_ROWS."""
    now = _naive(now) or utcnow()
    with store.engine.connect() as c:
        handles = linked_handles(c, handle_of(source, author))
        rows = _mention_rows(c, handles)
        cases = _case_rows(c, handles)
    counts = _counts(rows, cases, now)
    if exclude_case is not None:
        rows = rows[rows["case_id"] != exclude_case]
        cases = cases[cases["id"] != exclude_case]
    return {"handles": handles, "counts": counts, "mentions": rows.head(HISTORY_ROWS).reset_index(drop=True),
            "cases": cases.reset_index(drop=True)}


def _mention_rows(c: Connection, handles: list[str]) -> pd.DataFrame:
    query = (sa.select(mentions.c.key, mentions.c.created_at.label("at"), mentions.c.source, mentions.c.author,
                       mentions.c.thread_id, mentions.c.text, classifications.c.intent, classifications.c.category,
                       classifications.c.sentiment, case_mentions.c.case_id)
             .select_from(mentions.outerjoin(classifications, classifications.c.mention_key == mentions.c.key)
                          .outerjoin(case_mentions, case_mentions.c.mention_key == mentions.c.key))
             .where(by_handles(handles), mentions.c.deleted_at.is_(None))
             .order_by(sa.func.coalesce(mentions.c.created_at, mentions.c.fetched_at).desc(), mentions.c.key))
    frame = pd.read_sql(query, c)
    frame["at"] = pd.to_datetime(frame["at"])
    frame["case_id"] = frame["case_id"].astype("Int64")
    return frame


def _case_rows(c: Connection, handles: list[str]) -> pd.DataFrame:
    theirs = (sa.select(case_mentions.c.case_id)
              .join(mentions, mentions.c.key == case_mentions.c.mention_key).where(by_handles(handles)))
    query = (sa.select(queue_items.c.id, queue_items.c.status, queue_items.c.assignee, queue_items.c.team,
                       queue_items.c.priority, queue_items.c.created_at.label("opened"), queue_items.c.resolved_at,
                       queue_items.c.case_key)
             .where(queue_items.c.id.in_(theirs)).order_by(queue_items.c.created_at.desc(), queue_items.c.id.desc()))
    return pd.read_sql(query, c)


def _counts(rows: pd.DataFrame, cases: pd.DataFrame, now: datetime) -> dict:
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    dated = rows.dropna(subset=["at"])
    sentiments = rows.dropna(subset=["sentiment"])
    return {
        "mentions": len(rows),
        "cases": len(cases),
        "complaints_this_month": int(((dated["intent"] == "complaint") & (dated["at"] >= month)).sum()),
        "open_cases": int(cases["status"].isin(OPEN_STATUSES).sum()),
        "last_sentiment": sentiments.iloc[0]["sentiment"] if len(sentiments) else None,
        "first_seen": dated["at"].min().to_pydatetime() if len(dated) else None,
    }

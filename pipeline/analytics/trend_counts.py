"""The pre-aggregated daily counts behind the Trends page, goals and reports: `trend_daily`.

One row per UTC day, brand or competitor (`role`), sentiment, source, language, intent, complaint
category and emotion (None where the heads had no emotion task), with the number of mentions `n` and
their `reach` (the authors' followers summed). A mention naming two brands counts for each; brand rows
count relevant mentions, competitor rows every mention naming the competitor. `refresh` brings the
table up to date before each read: it compares the store's latest classification time, latest deletion
time and latest purge with those it last saw (in `trend_state`) and recounts only the days whose
mentions changed (everything after a purge).
This table and its state are all that the analyst API writes (a cache: dropped and recounted when its
layout changes); the two indexes it reads by come with schema migration 0007.
"""
from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from pipeline.store import Store, audit_log, classifications, mentions

log = logging.getLogger(__name__)

aggregates = sa.MetaData()
trend_daily = sa.Table(
    "trend_daily", aggregates,
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),      # a brand, or a competitor
    sa.Column("role", sa.String(12), nullable=False),       # brand | competitor
    sa.Column("sentiment", sa.String(12)),
    sa.Column("source", sa.String(40)),
    sa.Column("lang", sa.String(12)),
    sa.Column("intent", sa.String(20)),
    sa.Column("category", sa.String(40)),
    sa.Column("emotion", sa.String(20)),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("reach", sa.BigInteger, nullable=False),      # sum of the authors' followers
)
trend_state = sa.Table(
    "trend_state", aggregates,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
CUBE = ["day", "name", "role", "sentiment", "source", "lang", "intent", "category", "emotion"]


def _day_of(column, dialect: str):
    return sa.func.substr(column, 1, 10) if dialect == "sqlite" else sa.cast(column, sa.Date)


def prepare(store: Store) -> int:
    """Create `trend_daily` and its state (idempotent), then refresh."""
    with store.engine.begin() as conn:
        have = sa.inspect(conn).get_columns("trend_daily") if sa.inspect(conn).has_table("trend_daily") else []
        if have and {col["name"] for col in have} != {col.name for col in trend_daily.c}:
            aggregates.drop_all(conn)       # an older layout: recount from scratch
        aggregates.create_all(conn)     # a cache, rebuilt at will; the indexes it reads by are migration 0007
    _PREPARED.add(store.url)
    return refresh(store)


_PREPARED: set[str] = set()


def refresh(store: Store) -> int:
    """Recount the days whose mentions changed since the last refresh; returns how many days (-1: all).

    A day is recounted when one of its mentions was classified (or reclassified) or marked deleted
    since; a purge (`ecoute delete --purge`) recounts everything.
    """
    if store.url not in _PREPARED:
        return prepare(store)
    try:
        return _refresh(store)
    except sa.exc.OperationalError as exc:
        # SQLite: another process (a second dashboard session, a listener) holds the write lock or
        # refreshed first; the counts it writes are the same, so read what is there.
        log.info("trend_daily not refreshed now (%s); reading the stored counts", exc.orig)
        return 0


def _refresh(store: Store) -> int:
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE trend_state IN EXCLUSIVE MODE"))
        before = dict(conn.execute(sa.select(trend_state.c.name, trend_state.c.value)).all())
        marks = _marks(conn)
        if before == marks:
            return 0
        days = None if before.get("purged") != marks["purged"] else _changed_days(conn, store, before)
        count = _recount(conn, store, days)
        conn.execute(trend_state.delete())
        conn.execute(trend_state.insert(), [{"name": k, "value": v} for k, v in marks.items()])
        return count


def _marks(conn) -> dict[str, str]:
    return {"classified": str(conn.scalar(sa.select(sa.func.max(classifications.c.classified_at)))),
            "deleted": str(conn.scalar(sa.select(sa.func.max(mentions.c.deleted_at)))),
            "purged": str(conn.scalar(sa.select(sa.func.max(audit_log.c.id)).where(audit_log.c.action == "purge")))}


def _changed_days(conn, store: Store, before: dict[str, str]) -> list[date]:
    m, c = mentions, classifications
    day = _day_of(m.c.created_at, store.engine.dialect.name)
    changed = sa.false()
    if before.get("classified") not in (None, "None"):
        changed = sa.or_(changed, c.c.classified_at > datetime.fromisoformat(before["classified"]))
    else:
        changed = sa.true()
    if before.get("deleted") not in (None, "None"):
        changed = sa.or_(changed, m.c.deleted_at > datetime.fromisoformat(before["deleted"]))
    else:
        changed = sa.or_(changed, m.c.deleted_at.is_not(None))
    query = (sa.select(day).distinct().select_from(m.join(c, c.c.mention_key == m.c.key))
             .where(changed, m.c.created_at.is_not(None)))
    return sorted(pd.to_datetime(pd.Series(list(conn.scalars(query)))).dt.date)


def _recount(conn, store: Store, days: list[date] | None) -> int:
    m, c = mentions, classifications
    day = _day_of(m.c.created_at, store.engine.dialect.name).label("day")
    lang = sa.func.coalesce(c.c.lang, m.c.lang)
    columns = [day, c.c.brands, c.c.competitors, c.c.relevant, c.c.sentiment, m.c.source, lang.label("lang"),
               c.c.intent, c.c.category, c.c.emotion]
    reach = sa.func.sum(sa.func.coalesce(m.c.author_followers, 0))
    query = (sa.select(*columns, sa.func.count().label("n"), reach.label("reach"))
             .select_from(m.join(c, c.c.mention_key == m.c.key))
             .where(m.c.deleted_at.is_(None), m.c.created_at.is_not(None))
             .group_by(day.element, c.c.brands, c.c.competitors, c.c.relevant, c.c.sentiment, m.c.source, lang,
                       c.c.intent, c.c.category, c.c.emotion))
    if days is None:
        conn.execute(trend_daily.delete())
        groups = [query]
    else:
        groups = []
        for first, last in _runs(days):
            conn.execute(trend_daily.delete().where(trend_daily.c.day >= first, trend_daily.c.day <= last))
            groups.append(query.where(m.c.created_at >= datetime.combine(first, datetime.min.time()),
                                      m.c.created_at < datetime.combine(last + timedelta(days=1),
                                                                        datetime.min.time())))
    for group in groups:
        rows = _explode(pd.read_sql(group, conn))
        if len(rows):
            conn.execute(trend_daily.insert(), rows.to_dict("records"))
    return len(days) if days is not None else -1


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges: one query per run of changed days."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day - runs[-1][1] <= timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _explode(grouped: pd.DataFrame) -> pd.DataFrame:
    """Counts per brands-list → counts per brand (relevant mentions) and per competitor (all)."""
    if grouped.empty:
        return pd.DataFrame(columns=CUBE + ["n", "reach"])
    grouped["day"] = pd.to_datetime(grouped["day"]).dt.date
    parts = []
    for role, column, keep in (("brand", "brands", grouped["relevant"].astype(bool)),
                               ("competitor", "competitors", pd.Series(True, index=grouped.index))):
        part = grouped[keep].assign(name=grouped.loc[keep, column].map(json.loads)).explode("name")
        part = part.dropna(subset=["name"]).assign(role=role)
        parts.append(part)
    cube = pd.concat(parts, ignore_index=True)
    cube = cube.groupby(CUBE, dropna=False, as_index=False)[["n", "reach"]].sum()
    cube = cube.astype({"n": int, "reach": int}).astype(object)
    return cube.where(cube.notna(), None)


def read(store: Store, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """The counts of the days from start's to end's (both included), refreshed first."""
    refresh(store)
    query = sa.select(trend_daily)
    if start is not None:
        query = query.where(trend_daily.c.day >= start.date())
    if end is not None:
        query = query.where(trend_daily.c.day <= end.date())
    with store.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame["day"] = pd.to_datetime(frame["day"]).astype("datetime64[us]")
    for column in CUBE[1:]:
        frame[column] = frame[column].astype("string")
    frame[["n", "reach"]] = frame[["n", "reach"]].astype("int64")
    return frame

"""The analyst API: read the store as pandas DataFrames with typed columns.

    >>> from pipeline.analytics import mentions, cases, alerts, daily
    >>> recent = mentions(since="30d", brand="Aerolia", lang="fr")     # doctest: +SKIP
    >>> daily(since="90d")[["day", "brand", "volume", "share_of_voice"]]   # doctest: +SKIP

Every function takes the same filters: `since` and `until` ("30d", "6h", "2w", a datetime or an
ISO date; naive datetimes are UTC), `brand`, `source`, `lang`, and `db` (a path, a SQLAlchemy URL
or a `Store`; default: $ECOUTE_DB, else ./ecoute.db). Timestamps come back as naive UTC.

The Trends page, the goals and `ecoute report` call these same functions. Per-day counts come from
a pre-aggregated table, `trend_daily` (pipeline/analytics/trend_counts.py), brought up to date before each
read: only the days whose mentions were classified, reclassified or deleted since are recounted.
That table and two indexes are the only things the API writes; the store's own tables are only read.
"""
from __future__ import annotations

import functools
import json
import os
import re
from datetime import date, datetime, timedelta, timezone
from typing import Union

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.analytics import trend_counts
from pipeline.mention import SENTIMENTS
from pipeline.rules import Rules, parse_duration
from pipeline.store import (Store, case_events, classifications, database_url, mentions as mentions_table, queue_items,
                            utcnow)

When = Union[str, datetime, date, timedelta, None]
Db = Union[str, Store, None]

SPLITS = ("source", "lang", "intent", "category", "emotion")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


# -- arguments ------------------------------------------------------------------------------

def when(value: When, now: datetime | None = None) -> datetime | None:
    """'30d', '6h', a timedelta (that long before now), a datetime or an ISO date → naive UTC.

    >>> when("2026-11-01")
    datetime.datetime(2026, 11, 1, 0, 0)
    >>> when("2d", now=datetime(2026, 11, 3))
    datetime.datetime(2026, 11, 1, 0, 0)
    """
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    now = now or utcnow()
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, str) and _ISO_DAY.match(value.strip()):
        return when(datetime.fromisoformat(value.strip()))
    try:
        return now - parse_duration(value)
    except ValueError:
        raise ValueError(f"since/until: expected '30d', '6h', a datetime or an ISO date, got {value!r}") from None


@functools.lru_cache(maxsize=8)
def _open(url: str) -> Store:
    return Store(url)


def store_of(db: Db = None) -> Store:
    """A `Store`, a path or URL (opened once per process), or None for $ECOUTE_DB / ./ecoute.db."""
    return db if isinstance(db, Store) else _open(database_url(db))


def _rules_competitors(rules: Rules | None) -> dict[str, list[str]]:
    if rules is None:
        from pipeline.rules import RulesError, load_rules

        try:
            rules = load_rules(os.environ.get("ECOUTE_RULES"))
        except RulesError:
            return {}
    return {b.name: list(b.competitors) for b in rules.brands}


def _contains(column, name: str):
    """A JSON list column holding `name` (the store writes these lists with json.dumps). Escaped: a `%` or `_`
    in a name is that character, not a LIKE wildcard ('A_rolia' is not 'Aerolia')."""
    return column.contains(json.dumps(name, ensure_ascii=False), autoescape=True)


# -- mentions, cases, alerts ----------------------------------------------------------------

MENTION_TYPES = {"key": "string", "source": "string", "source_id": "string", "url": "string", "author": "string",
                 "author_followers": "Int64", "title": "string", "text": "string", "lang": "string",
                 "model": "string", "relevant": "boolean", "sentiment": "string", "sentiment_score": "float64",
                 "complaint": "boolean", "complaint_score": "float64", "intent": "string", "category": "string",
                 "severity": "string", "needs_response": "boolean", "priority": "Int64", "error": "string",
                 "emotion": "string", "emotion_score": "float64", "irony_score": "float64"}
JSON_COLUMNS = ("brands", "competitors", "transparency", "reasons")


def json_lists(column: pd.Series) -> pd.Series:
    """JSON list text → a tuple per row; () when missing. Each distinct text is parsed once and its
    tuple shared by the rows that hold it (immutable, so sharing is safe; most rows share a few)."""
    codes, uniques = pd.factorize(column.to_numpy(dtype=object, na_value=None), use_na_sentinel=True)
    parsed = np.empty(len(uniques) + 1, dtype=object)
    parsed[:-1] = [tuple(json.loads(v)) for v in uniques]
    parsed[-1] = ()
    return pd.Series(parsed[codes], index=column.index, dtype=object)     # code -1 (missing) → ()


def _typed(frame: pd.DataFrame, types: dict[str, str], times: tuple[str, ...]) -> pd.DataFrame:
    for column, kind in types.items():
        if column in frame:
            frame[column] = frame[column].astype(kind)
    for column in times:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[us]")
    return frame


def mentions(since: When = None, until: When = None, brand: str | None = None, source: str | None = None,
             lang: str | None = None, db: Db = None, *, intent: str | None = None, category: str | None = None,
             sentiment: str | None = None, competitor: str | None = None, limit: int | None = None,
             raw: bool = False) -> pd.DataFrame:
    """One row per stored mention (posted in [since, until)) with its classification, oldest first.

    Columns: key, source, source_id, url, author, author_followers, created_at, fetched_at, title, text,
    lang (the detected one when classified), model, relevant, brands, competitors (tuples), sentiment,
    sentiment_score, complaint, complaint_score, intent, category, severity, needs_response, priority,
    transparency, reasons (tuples), error, classified_at, emotion, emotion_score, irony_score (missing
    where the heads had no emotion or irony task); `raw=True` adds the source's payload (JSON text).
    Unclassified mentions have empty labels; deleted ones are left out. `brand` and `competitor` keep
    the mentions naming them; `intent`, `category`, `sentiment` filter on the labels.

    >>> frame = mentions(since="7d", brand="Aerolia", db="ecoute-demo.db")   # doctest: +SKIP
    >>> frame.groupby("sentiment").size()                                    # doctest: +SKIP
    """
    m, c = mentions_table, classifications
    columns = [_as_text(col) for col in m.c if col.name not in ("raw", "lang", "deleted_at", "parent_id",
                                                                "thread_id", "author_created_at")
               or (raw and col.name == "raw")]
    query = (sa.select(*columns, sa.func.coalesce(c.c.lang, m.c.lang).label("lang"),
                       *[_as_text(col) for col in c.c if col.name not in ("mention_key", "lang")])
             .select_from(m.outerjoin(c, c.c.mention_key == m.c.key))
             .where(m.c.deleted_at.is_(None)).order_by(m.c.created_at))
    query = _mention_filters(query, since, until, brand, source, lang, intent, category, sentiment, competitor)
    if limit:
        query = query.limit(limit)
    frame = read_frame(query, store_of(db))
    for column in JSON_COLUMNS:
        frame[column] = json_lists(frame[column])
    return _typed(frame, MENTION_TYPES, ("created_at", "fetched_at", "classified_at"))


def read_frame(query, store: Store) -> pd.DataFrame:
    """pandas.read_sql, without SQLAlchemy's row objects on SQLite (a fifth of a big read's time)."""
    if store.engine.dialect.name != "sqlite":
        with store.engine.connect() as conn:
            return pd.read_sql(query, conn)
    compiled = query.compile(dialect=store.engine.dialect)
    params = [compiled.params[name] for name in compiled.positiontup]
    params = [v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in params]
    with store.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(str(compiled), params)
            names = [d[0] for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=names)
        finally:
            cursor.close()


def _as_text(column):
    """A DateTime column read as its stored text: pandas parses a whole column at once, far faster than
    the driver's row-by-row conversion (SQLite stores ISO text; other back-ends cast to it)."""
    if not isinstance(column.type, sa.DateTime):
        return column
    return sa.type_coerce(column, sa.String).label(column.name)


def _mention_filters(query, since, until, brand, source, lang, intent=None, category=None, sentiment=None,
                     competitor=None):
    m, c = mentions_table, classifications
    start, end = when(since), when(until)
    if start is not None:
        query = query.where(m.c.created_at >= start)
    if end is not None:
        query = query.where(m.c.created_at < end)
    if brand:
        query = query.where(_contains(c.c.brands, brand))
    if competitor:
        query = query.where(_contains(c.c.competitors, competitor))
    if lang:
        query = query.where(sa.func.coalesce(c.c.lang, m.c.lang) == lang)
    for column, value in ((m.c.source, source), (c.c.intent, intent), (c.c.category, category),
                          (c.c.sentiment, sentiment)):
        if value:
            query = query.where(column == value)
    return query


CASE_TYPES = {"id": "Int64", "status": "string", "priority": "Int64", "band": "string", "assignee": "string",
              "mention_key": "string", "case_key": "string", "dismiss_reason": "string", "source": "string",
              "author": "string", "author_followers": "Int64", "url": "string", "text": "string",
              "lang": "string", "intent": "string", "category": "string", "severity": "string",
              "sentiment": "string", "first_response_seconds": "float64", "resolution_seconds": "float64",
              "breached": "boolean"}


def cases(since: When = None, until: When = None, brand: str | None = None, source: str | None = None,
          lang: str | None = None, db: Db = None, *, status: str | None = None) -> pd.DataFrame:
    """One row per case (a queue item) opened in [since, until), newest first, with its latest mention.

    Adds `first_response_seconds` (first_response_at - created_at, else the first 'reply' event),
    `resolution_seconds` (resolved cases) and `breached` (first response later than due_at, or none yet
    and overdue). `brands` is a tuple.

    >>> cases(since="30d", status="resolved")["first_response_seconds"].median()   # doctest: +SKIP
    """
    q, m, c = queue_items, mentions_table, classifications
    replied = (sa.select(sa.func.min(case_events.c.at)).where(case_events.c.case_id == q.c.id,
                                                             case_events.c.kind == "reply")
               .correlate(q).scalar_subquery())
    query = (sa.select(q.c.id, q.c.status, q.c.priority, q.c.band, q.c.assignee, q.c.created_at, q.c.due_at,
                       q.c.claimed_at, sa.func.coalesce(q.c.first_response_at, replied).label("first_response_at"),
                       q.c.resolved_at, q.c.resolve_due_at, q.c.dismiss_reason, q.c.mention_key, q.c.case_key,
                       m.c.source, m.c.author, m.c.author_followers, m.c.url, m.c.text,
                       m.c.created_at.label("posted_at"), sa.func.coalesce(c.c.lang, m.c.lang).label("lang"),
                       c.c.brands, c.c.intent, c.c.category, c.c.severity, c.c.sentiment)
             .select_from(q.join(m, m.c.key == q.c.mention_key).outerjoin(c, c.c.mention_key == m.c.key))
             .order_by(q.c.created_at.desc(), q.c.id.desc()))
    start, end = when(since), when(until)
    if start is not None:
        query = query.where(q.c.created_at >= start)
    if end is not None:
        query = query.where(q.c.created_at < end)
    if status:
        query = query.where(q.c.status == status)
    query = _mention_filters(query, None, None, brand, source, lang)
    with store_of(db).engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame["brands"] = json_lists(frame["brands"])
    frame = _typed(frame, {}, ("created_at", "due_at", "claimed_at", "first_response_at", "resolved_at",
                               "resolve_due_at", "posted_at"))
    frame["first_response_seconds"] = (frame["first_response_at"] - frame["created_at"]).dt.total_seconds()
    frame["resolution_seconds"] = (frame["resolved_at"] - frame["created_at"]).dt.total_seconds().where(
        frame["status"] == "resolved")
    late = frame["first_response_at"].fillna(pd.Timestamp(utcnow())) > frame["due_at"]
    frame["breached"] = late & frame["due_at"].notna()
    return _typed(frame, CASE_TYPES, ())


def alerts(since: When = None, until: When = None, brand: str | None = None, db: Db = None, *,
           kind: str | None = None) -> pd.DataFrame:
    """Stored crisis and spike alerts whose window ends in [since, until), latest first.

    Columns: id, kind (volume_spike, negative_share, fast_post), brand, subject, window_start,
    window_end, value, baseline, score, reason, mention_keys (list), created_at, updated_at, deliveries.

    >>> alerts(since="7d", kind="volume_spike")[["brand", "window_start", "reason"]]   # doctest: +SKIP
    """
    from pipeline.store.alerts import list_alerts

    frame = list_alerts(store_of(db), when(since), brand, limit=100_000)
    end = when(until)
    if end is not None:
        frame = frame[frame["window_end"] < end]
    if kind:
        frame = frame[frame["kind"] == kind]
    frame = _typed(frame.reset_index(drop=True), {"kind": "string", "brand": "string", "subject": "string",
                                                  "reason": "string", "value": "float64", "baseline": "float64",
                                                  "score": "float64", "id": "Int64"},
                   ("window_start", "window_end", "created_at", "updated_at"))
    return frame


# -- the pre-aggregated daily counts (pipeline/analytics/trend_counts.py) ------------------------------

def prepare(db: Db = None) -> int:
    """Create the daily counts table and its indexes if needed, and bring it up to date (the first
    time on a big store takes a while: about 20 s per million mentions)."""
    return trend_counts.prepare(store_of(db))


def refresh(db: Db = None) -> int:
    """Recount the days whose mentions changed since the last read; returns how many (-1: all)."""
    return trend_counts.refresh(store_of(db))


def counts(since: When = "30d", until: When = None, db: Db = None) -> pd.DataFrame:
    """The daily counts for the days in [since, until] (whole days): one row per day, brand or
    competitor (`role`), sentiment, source, lang, intent and category, with the count `n` and `reach`.

    >>> counts(since="7d").groupby(["name", "sentiment"])["n"].sum()     # doctest: +SKIP
    """
    return trend_counts.read(store_of(db), when(since), when(until))


def _filtered(cube: pd.DataFrame, source=None, lang=None, intent=None, category=None) -> pd.DataFrame:
    for column, value in (("source", source), ("lang", lang), ("intent", intent), ("category", category)):
        if value:
            cube = cube[cube[column] == value]
    return cube


def _per_day(cube: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sentiment counts, volume, negative share and net sentiment per `by` group."""
    table = cube.pivot_table(index=by, columns="sentiment", values="n", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=list(SENTIMENTS), fill_value=0).reset_index()
    table.columns.name = None
    table["volume"] = table[list(SENTIMENTS)].sum(axis=1)
    table["negative_share"] = table["negative"] / table["volume"]
    table["net_sentiment"] = (table["positive"] - table["negative"]) / table["volume"]
    return table


def with_share_of_voice(frame: pd.DataFrame, cube: pd.DataFrame, competitors: dict[str, list[str]],
                        by: list[str]) -> pd.DataFrame:
    """Add `competitor_volume` (mentions naming the brand's competitors) and `share_of_voice`
    (brand / (brand + competitors)) to a per-brand frame grouped by `by` (which must include brand)."""
    rivals = cube[cube["role"] == "competitor"]
    pairs = pd.DataFrame([(b, c) for b, names in competitors.items() for c in names], columns=["brand", "name"])
    keys = [k for k in by if k != "brand"]
    if len(rivals) and len(pairs):
        theirs = (rivals.merge(pairs, on="name").groupby(["brand", *keys], as_index=False)["n"].sum()
                  .rename(columns={"n": "competitor_volume"}))
        frame = frame.merge(theirs, on=["brand", *keys], how="left")
    else:
        frame = frame.assign(competitor_volume=0)
    frame["competitor_volume"] = frame["competitor_volume"].fillna(0).astype("int64")
    has_rivals = frame["brand"].map(lambda b: bool(competitors.get(b)))
    frame["share_of_voice"] = (frame["volume"] / (frame["volume"] + frame["competitor_volume"])).where(has_rivals)
    return frame


DAILY_COLUMNS = ["day", "brand", "volume", "negative", "neutral", "positive", "negative_share", "net_sentiment",
                 "competitor_volume", "share_of_voice"]


def daily(since: When = None, until: When = None, brand: str | None = None, source: str | None = None,
          lang: str | None = None, db: Db = None, *, intent: str | None = None, category: str | None = None,
          competitors: dict[str, list[str]] | None = None, rules: Rules | None = None) -> pd.DataFrame:
    """Per brand and UTC day: volume of relevant mentions, their sentiment counts, negative share,
    net sentiment ((positive - negative) / volume), competitor volume and share of voice.

    Share of voice is brand / (brand + its `competitors` in rules.yaml), counting every stored mention
    that names a competitor; NaN for a brand without competitors. `competitors` ({brand: [names]})
    or `rules` replace the configured rules ($ECOUTE_RULES, else ./rules.yaml). Days with no mention
    of a brand are absent. `since`/`until` cut on whole days.

    >>> week = daily(since="7d", db="ecoute-demo.db")                          # doctest: +SKIP
    >>> week.groupby("brand")[["volume", "negative"]].sum()                      # doctest: +SKIP
    """
    cube = _filtered(counts(since, until, db), source, lang, intent, category)
    competitors = _rules_competitors(rules) if competitors is None else competitors
    mine = cube[cube["role"] == "brand"].rename(columns={"name": "brand"})
    if brand:
        mine = mine[mine["brand"] == brand]
    if mine.empty:
        return _typed(pd.DataFrame(columns=DAILY_COLUMNS), {"brand": "string"}, ("day",))
    frame = with_share_of_voice(_per_day(mine, ["day", "brand"]), cube, competitors, ["day", "brand"])
    frame = frame[DAILY_COLUMNS].sort_values(["brand", "day"]).reset_index(drop=True)
    return _typed(frame, {"brand": "string", **{k: "int64" for k in ("volume", *SENTIMENTS, "competitor_volume")}},
                  ("day",))


def trends(since: When = "30d", until: When = None, *, brand: str | None = None, source: str | None = None,
           lang: str | None = None, intent: str | None = None, category: str | None = None,
           split: str | None = None, competitors: dict[str, list[str]] | None = None, db: Db = None) -> dict:
    """Everything the Trends page shows, from one read of the daily counts.

    Returns a dict of DataFrames: `daily` (as `daily()`), `totals` (per brand over the period: volume,
    negative share, net sentiment, share of voice, and the same over the previous period of equal length
    with the changes), `split` (per day, brand and value of `split`, one of source, lang, intent,
    category, emotion: volume; "(none)" for mentions without that label), `competitors` (per day and
    competitor: volume), `sources` (as `top_sources()`) and `previous` (per brand and day of the previous
    period: volume, `day` moved forward by the period's length to overlay the current one, `posted` the
    real day); and the period's `start`, `end` and `previous_start` (Timestamps).

    >>> view = trends(since="30d", split="lang", db="ecoute-demo.db")          # doctest: +SKIP
    >>> view["totals"][["brand", "volume", "volume_previous", "share_of_voice"]]   # doctest: +SKIP
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    end = when(until) or utcnow()
    start = when(since, now=end) or end - timedelta(days=30)
    length = end.date() - start.date() + timedelta(days=1)
    competitors = _rules_competitors(None) if competitors is None else competitors
    cube = _filtered(counts(datetime.combine(start.date() - length, datetime.min.time()), end, db),
                     source, lang, intent, category)
    now_part = cube[cube["day"] >= pd.Timestamp(start.date())]
    before = cube[cube["day"] < pd.Timestamp(start.date())]
    mine = now_part[now_part["role"] == "brand"].rename(columns={"name": "brand"})
    if brand:
        mine = mine[mine["brand"] == brand]
    out = {"daily": pd.DataFrame(columns=DAILY_COLUMNS), "totals": pd.DataFrame(), "split": pd.DataFrame(),
           "sources": pd.DataFrame(), "previous": pd.DataFrame(columns=["day", "posted", "brand", "volume"]),
           "competitors": now_part[now_part["role"] == "competitor"].groupby(["day", "name"], as_index=False)["n"]
           .sum().rename(columns={"name": "competitor", "n": "volume"}),
           "start": pd.Timestamp(start.date()), "end": pd.Timestamp(end), "previous_start": pd.Timestamp(start.date() - length)}
    if mine.empty:
        return out
    out["daily"] = with_share_of_voice(_per_day(mine, ["day", "brand"]), now_part, competitors, ["day", "brand"])
    totals = with_share_of_voice(_per_day(mine, ["brand"]), now_part, competitors, ["brand"])
    theirs = before[before["role"] == "brand"].rename(columns={"name": "brand"})
    if len(theirs):
        previous = with_share_of_voice(_per_day(theirs, ["brand"]), before, competitors, ["brand"])
        keep = ["brand", "volume", "negative_share", "net_sentiment", "share_of_voice"]
        totals = totals.merge(previous[keep], on="brand", how="left", suffixes=("", "_previous"))
        shifted = _per_day(theirs[theirs["brand"].isin(totals["brand"])], ["day", "brand"])
        out["previous"] = shifted.assign(posted=shifted["day"], day=shifted["day"] + pd.Timedelta(length))[
            ["day", "posted", "brand", "volume"]]
    else:
        for column in ("volume", "negative_share", "net_sentiment", "share_of_voice"):
            totals[f"{column}_previous"] = float("nan")
    totals["volume_change"] = totals["volume"] / totals["volume_previous"] - 1
    out["totals"] = totals
    sources = mine.assign(negative=mine["n"].where(mine["sentiment"] == "negative", 0)).groupby(
        "source", as_index=False)[["n", "reach", "negative"]].sum().rename(columns={"n": "mentions"})
    out["sources"] = sources.assign(negative_share=sources["negative"] / sources["mentions"]).sort_values(
        "reach", ascending=False, ignore_index=True)
    if split:
        out["split"] = (mine.groupby(["day", "brand", split], as_index=False, dropna=False)["n"].sum()
                        .rename(columns={"n": "volume"}))
        out["split"][split] = out["split"][split].fillna("(none)")
    return out


def top_authors(since: When = "30d", until: When = None, brand: str | None = None, source: str | None = None,
                lang: str | None = None, db: Db = None, *, n: int = 10) -> pd.DataFrame:
    """The authors with the most reach (followers) who posted relevant mentions in the period.

    Columns: author, source, mentions, followers (the largest count seen), negative (their negative
    mentions), reach (followers × mentions: an upper bound on impressions).

    >>> top_authors(since="30d", brand="Lumelle", n=5)    # doctest: +SKIP
    """
    m, c = mentions_table, classifications
    negative = sa.func.sum(sa.case((c.c.sentiment == "negative", 1), else_=0))
    followers = sa.func.max(sa.func.coalesce(m.c.author_followers, 0))
    query = (sa.select(m.c.author, m.c.source, sa.func.count().label("mentions"), followers.label("followers"),
                       negative.label("negative"))
             .select_from(m.join(c, c.c.mention_key == m.c.key))
             .where(m.c.deleted_at.is_(None), c.c.relevant.is_(True), m.c.author.is_not(None))
             .group_by(m.c.author, m.c.source)
             .order_by((followers * sa.func.count()).desc(), sa.func.count().desc()).limit(n))
    query = _mention_filters(query, since, until, brand, source, lang)
    with store_of(db).engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame["reach"] = frame["followers"] * frame["mentions"]
    return _typed(frame, {"author": "string", "source": "string", "mentions": "int64", "followers": "int64",
                          "negative": "int64", "reach": "int64"}, ())


def top_sources(since: When = "30d", until: When = None, brand: str | None = None, lang: str | None = None,
                db: Db = None) -> pd.DataFrame:
    """Per source: relevant mentions, reach (the authors' followers summed per mention) and negative
    share, largest reach first (from the daily counts: whole days).

    >>> top_sources(since="7d")          # doctest: +SKIP
    """
    cube = _filtered(counts(since, until, db), None, lang)
    cube = cube[cube["role"] == "brand"]
    if brand:
        cube = cube[cube["name"] == brand]
    frame = cube.assign(negative=cube["n"].where(cube["sentiment"] == "negative", 0)).groupby(
        "source", as_index=False)[["n", "reach", "negative"]].sum().rename(columns={"n": "mentions"})
    frame["negative_share"] = frame["negative"] / frame["mentions"]
    return frame.sort_values("reach", ascending=False).reset_index(drop=True)


def spikes(frame: pd.DataFrame, factor: float = 2.5, minimum: int = 5) -> pd.DataFrame:
    """Days of `daily()` whose volume is at least `factor` × the brand's median day in the frame (and
    `minimum` mentions): the spike markers of the Trends page and the report."""
    if frame.empty:
        return frame.iloc[0:0]
    usual = frame.groupby("brand")["volume"].transform("median")
    return frame[(frame["volume"] >= factor * usual) & (frame["volume"] >= minimum)]

"""`ecoute bench trends`: how fast the Trends page and the analyst API answer on a big store.

Fills a store with N synthetic classified mentions spread over the year before now, for several
brands and their competitors (reused when already there: the fill only tops up), then times the
queries the Trends page runs on its default view (`pipeline.analytics.trends`: the last 30 days per
brand and day, share of voice, the split by source and the previous 30 days to compare with) and
`pipeline.analytics.mentions(since="30d")`. The last line printed is one JSON object.
"""
from __future__ import annotations

import json
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from pipeline.mention import CATEGORIES, INTENTS
from pipeline.store import Store, classifications, mentions, utcnow

COMPETITORS = {"Aerolia": ["SkyNordic", "Volantis"], "Lumelle": ["Dermacorp", "Belle Peau"],
               "Nordrail": ["Eurotrack"], "Parcelio": ["Shipfast", "Colirapide"]}
SOURCES = ("twitter", "reddit", "mastodon", "bluesky", "rss")
CHUNK = 50_000
YEAR = 365 * 86400
MENTION_COLUMNS = ["key", "source", "source_id", "author", "author_followers", "created_at", "text", "lang",
                   "raw", "fetched_at"]
LABEL_COLUMNS = ["mention_key", "model", "lang", "relevant", "brands", "competitors", "sentiment",
                 "sentiment_score", "complaint", "complaint_score", "intent", "category", "needs_response",
                 "priority", "transparency", "reasons", "classified_at"]
STAMP = "%Y-%m-%d %H:%M:%S.%f"     # SQLAlchemy's SQLite DateTime storage format


def _rows(start: int, count: int, total: int, now: datetime, rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """Mentions `start`..`start + count` of `total`, posted in arrival order over the year before now
    (as listeners store them: oldest first), each within a minute of its even share of the year."""
    brands = list(COMPETITORS)
    fetched = now.strftime(STAMP)
    mention_rows, label_rows = [], []
    for i in range(start, start + count):
        key = f"benchtrend:{i}"
        ago = YEAR * (1 - i / total) - rng.random() * 60
        posted = (now - timedelta(seconds=max(0.0, ago))).strftime(STAMP)
        brand = rng.choice(brands)
        named = [brand] if rng.random() < 0.85 else []
        rivals = [rng.choice(COMPETITORS[brand])] if not named or rng.random() < 0.1 else []
        intent = rng.choices(INTENTS, (15, 10, 20, 55))[0]
        sentiment = "negative" if intent == "complaint" else rng.choices(("negative", "neutral", "positive"),
                                                                         (15, 55, 30))[0]
        lang = "fr" if rng.random() < 0.35 else "en"
        mention_rows.append((key, rng.choice(SOURCES), str(i), f"@fan{rng.randrange(50_000)}",
                             int(rng.paretovariate(1.2) * 50), posted, f"bench mention {i} about {brand}",
                             lang, "{}", fetched))
        label_rows.append((key, "bench", lang, bool(named), json.dumps(named), json.dumps(rivals), sentiment,
                           0.8, intent == "complaint", 0.8 if intent == "complaint" else 0.1, intent,
                           rng.choice(CATEGORIES) if intent == "complaint" else None,
                           intent in ("complaint", "question"), rng.randrange(0, 101), "[]", "[]", fetched))
    return mention_rows, label_rows


def fill(store: Store, total: int, echo: Callable[[str], None]) -> int:
    """Top the store up to `total` synthetic mentions; returns how many were added.

    Bulk inserts in chunks of 50,000 rows through the driver's executemany (one transaction each).
    """
    with store.engine.connect() as c:
        have = c.scalar(sa.select(sa.func.count()).select_from(mentions)
                        .where(mentions.c.source_id.is_not(None), mentions.c.key.like("benchtrend:%")))
    missing = max(0, total - have)
    rng, now = random.Random(have), utcnow()
    mention_sql = mentions.insert().compile(dialect=store.engine.dialect, column_keys=MENTION_COLUMNS)
    label_sql = classifications.insert().compile(dialect=store.engine.dialect, column_keys=LABEL_COLUMNS)
    for start in range(0, missing, CHUNK):
        count = min(CHUNK, missing - start)
        mention_rows, label_rows = _rows(have + start, count, total, now, rng)
        with store.engine.begin() as c:
            if store.engine.dialect.name == "sqlite":
                cursor = c.connection.driver_connection.cursor()
                cursor.executemany(str(mention_sql), mention_rows)
                cursor.executemany(str(label_sql), label_rows)
            else:
                c.execute(mentions.insert(), [_stamps(MENTION_COLUMNS, r, (5, 9)) for r in mention_rows])
                c.execute(classifications.insert(), [_stamps(LABEL_COLUMNS, r, (16,)) for r in label_rows])
        echo(f"  stored {start + count}/{missing} mentions")
    return missing


def _stamps(columns: list[str], row: tuple, positions: tuple[int, ...]) -> dict:
    """A row as SQLAlchemy wants it for other back-ends: a dict, with datetimes."""
    return {name: datetime.strptime(v, STAMP) if i in positions else v
            for i, (name, v) in enumerate(zip(columns, row))}


def _timed(call: Callable[[], object], repeat: int = 3) -> float:
    """The best of `repeat` runs: the page's cold first load is dominated by the OS file cache."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def run(db: str | None, total: int, echo: Callable[[str], None]) -> dict:
    from pipeline import analytics

    target = db or str(Path(tempfile.mkdtemp()) / "bench-trends.db")
    store = Store(target)
    started = time.perf_counter()
    added = fill(store, total, echo)
    fill_seconds = time.perf_counter() - started
    started = time.perf_counter()
    analytics.prepare(store)          # the first count of a new store; later refreshes recount changed days only
    prepare_seconds = time.perf_counter() - started
    trends_seconds = _timed(lambda: analytics.trends(since="30d", split="source", competitors=COMPETITORS,
                                                    db=store))
    api_seconds = _timed(lambda: analytics.mentions(since="30d", db=store))
    rows = len(analytics.mentions(since="30d", db=store))
    result = {"mentions": total, "added": added, "fill_seconds": round(fill_seconds, 1),
              "prepare_seconds": round(prepare_seconds, 1),
              "trends_seconds": round(trends_seconds, 3), "api_seconds": round(api_seconds, 3),
              "api_rows": rows, "backend": store.engine.dialect.name, "db": store.url}
    echo(f"Trends page (30 days, previous 30, share of voice, split by source): {trends_seconds:.2f} s; "
         f"mentions(since='30d'): {api_seconds:.2f} s for {rows} rows")
    echo(json.dumps(result))
    return result

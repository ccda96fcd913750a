"""The `goals:` of rules.yaml measured: current value against target, met or not, and a weekly trend.

Metrics (each for one brand, or all brands when the goal names none):

- `median_first_response`: median of first_response_at - created_at over the cases opened in the
  period that have a first response (the first 'reply' event when first_response_at is empty);
  target a duration ("1h").
- `negative_share`: negative / all relevant mentions.
- `net_sentiment`: (positive - negative) / all relevant mentions, from -1 to 1.
- `resolution_rate`: resolved / (opened - dismissed) over the complaint cases opened in the period
  (all cases when none is a complaint).
- `share_of_voice`: brand mentions / (brand + competitor mentions), competitors from `brands[].competitors`.

The dashboard's Trends page and `ecoute report` show the same table.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from pipeline import analytics
from pipeline.rules import Goal, Rules

COLUMNS = ["goal", "metric", "brand", "value", "target", "direction", "met", "shown", "target_shown", "trend"]


def measure(goal: Goal, daily: pd.DataFrame, cases: pd.DataFrame) -> float:
    """The goal's metric over the given rows (already cut to the period); NaN without data."""
    if goal.brand:
        daily = daily[daily["brand"] == goal.brand]
        cases = cases[cases["brands"].map(lambda names: goal.brand in names)]
    if goal.metric == "median_first_response":
        return float(cases["first_response_seconds"].dropna().median()) if len(cases) else float("nan")
    if goal.metric == "resolution_rate":
        complaints = cases[cases["intent"] == "complaint"]
        cases = complaints if len(complaints) else cases
        counted = cases[cases["status"] != "dismissed"]
        return float((counted["status"] == "resolved").mean()) if len(counted) else float("nan")
    volume = daily["volume"].sum()
    if not volume:
        return float("nan")
    if goal.metric == "negative_share":
        return float(daily["negative"].sum() / volume)
    if goal.metric == "net_sentiment":
        return float((daily["positive"].sum() - daily["negative"].sum()) / volume)
    rivals = daily.loc[daily["share_of_voice"].notna(), "competitor_volume"].sum()
    own = daily.loc[daily["share_of_voice"].notna(), "volume"].sum()
    return float(own / (own + rivals)) if own + rivals else float("nan")


def target_value(goal: Goal) -> float:
    target = goal.target
    return target.total_seconds() if isinstance(target, timedelta) else float(target)


def shown(metric: str, value: float) -> str:
    """A value as a person reads it: '42 min', '18.5%', '+0.12'."""
    if value is None or pd.isna(value):
        return "no data"
    if metric == "median_first_response":
        return f"{value / 60:.0f} min" if value < 5400 else f"{value / 3600:.1f} h"
    if metric == "net_sentiment":
        return f"{value:+.2f}"
    return f"{value:.1%}"


def status(rules: Rules, since: analytics.When = "30d", until: analytics.When = None, db: analytics.Db = None,
           weeks: int = 8) -> pd.DataFrame:
    """One row per goal: value over [since, until), target, met (None without data), and `trend`, the
    value of each of the last `weeks` weeks (oldest first).

    >>> from pipeline.rules import load_rules
    >>> status(load_rules("rules.yaml"), since="30d", db="ecoute-demo.db")[["goal", "shown", "met"]]  # doctest: +SKIP
    """
    now = analytics.when(until) or analytics.utcnow()
    end = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())   # whole UTC days
    start = datetime.combine(analytics.when(since, now=now).date(), datetime.min.time())
    first = min(start, end - timedelta(weeks=weeks))
    competitors = {b.name: list(b.competitors) for b in rules.brands}
    daily = analytics.daily(first, end, db=db, competitors=competitors)
    cases = analytics.cases(first, end, db=db)
    rows = []
    for goal in rules.goals:
        value = measure(goal, _cut(daily, "day", start, end), _cut(cases, "created_at", start, end))
        trend = [measure(goal, _cut(daily, "day", end - timedelta(weeks=w + 1), end - timedelta(weeks=w)),
                         _cut(cases, "created_at", end - timedelta(weeks=w + 1), end - timedelta(weeks=w)))
                 for w in reversed(range(weeks))]
        target = target_value(goal)
        met = None if pd.isna(value) else bool(value < target if goal.direction == "below" else value > target)
        rows.append({"goal": goal.name, "metric": goal.metric, "brand": goal.brand or "all brands", "value": value,
                     "target": target, "direction": goal.direction, "met": met, "shown": shown(goal.metric, value),
                     "target_shown": shown(goal.metric, target), "trend": trend})
    return pd.DataFrame(rows, columns=COLUMNS)


def _cut(frame: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Rows in [start, end), both midnights."""
    return frame[(frame[column] >= pd.Timestamp(start)) & (frame[column] < pd.Timestamp(end))]

"""Crisis and spike alerts: per brand, abnormal rises in mention volume and in negative share against a
seasonal baseline, and single posts whose engagement grows abnormally fast.

The method (docs/alerts.md says the same):

- **volume_spike**: a brand's mentions are counted in sliding windows (`alerts.windows`: 10 min, 15 min,
  1 h and 6 h by default, one ending every `step`, 5 min; the newest ends now and expects only its elapsed part). The expected count is a seasonal Poisson rate summed over the
  window: per hour, level × day-of-week factor × hour-of-day factor (local time, `queue.timezone`), all
  estimated from the `baseline_weeks` before the window's day. The level is the mean hourly count once
  the busiest tenth of days is clipped, so a past crisis neither raises the bar nor skews the hour
  profile for a month; each factor is shrunk towards 1 by 5 pseudo-mentions, so a quiet brand gets a
  flat profile rather than a noisy one. A window alerts when P(X ≥ seen | Poisson(expected)) ≤
  `p_value`, seen ≥ `min_count` and seen ≥ `min_ratio` × expected (the ratio guards against the
  overdispersion real traffic has and a Poisson model does not).
- **negative_share**: in the same windows, k negative of n mentions against the baseline share p0
  ((negatives + 1) / (mentions + 2) over the unclipped baseline days): binomial upper tail
  P(K ≥ k | n, p0) ≤ `p_value`, k ≥ `negative_min_count` and k/n ≥ p0 + `negative_increase`.
- **fast_post**: a post's engagement (likes, reposts, replies, quotes, score, comments: whichever its
  raw payload carries, see ENGAGEMENT_FIELDS) divided by the hours between posting and its latest
  fetch (at least 15 minutes), so each re-fetch updates it. It alerts when the engagement reaches
  `post_min_engagement`, the rate `post_per_hour`, and its robust z-score (median and MAD of
  log(1 + rate) over the brand's posts in the scanned range) reaches `post_z`; with fewer than 10
  such posts the two absolute thresholds decide alone.

A brand needs 7 days of history before its first volume or share alert. Overlapping windows of one
brand and kind merge into one alert, in a run and across runs (pipeline/store/alerts.py).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.rules import ALERT_KINDS, Alerts, Rules
from pipeline.store import Store, utcnow
from pipeline.desk.untrusted import plain_name

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
PRIOR = 5.0                 # pseudo-mentions shrinking each seasonal factor towards 1
MIN_HISTORY_DAYS = 7
MIN_POSTS_FOR_Z = 10
MAX_SCORE = 300.0           # -log10 p is capped: beyond this the evidence is all the same
# Engagement counters, by path in Mention.raw, as the listeners keep them: X public_metrics, Reddit
# score and num_comments, Mastodon counts; flat like_count/retweet_count for imported files.
ENGAGEMENT_FIELDS = (("public_metrics", "like_count"), ("public_metrics", "retweet_count"),
                     ("public_metrics", "reply_count"), ("public_metrics", "quote_count"),
                     ("score",), ("num_comments",), ("favourites_count",), ("reblogs_count",),
                     ("replies_count",), ("like_count",), ("retweet_count",), ("reply_count",),
                     ("quote_count",), ("likes",), ("shares",), ("comments",))


@dataclass(frozen=True)
class Alert:
    """Something a brand's team should look at now; times are naive UTC, like the store's."""

    kind: str                   # one of rules.ALERT_KINDS
    brand: str
    window_start: datetime
    window_end: datetime
    value: float                # mentions seen, negative share, or engagement per hour
    baseline: float             # what was expected
    score: float                # -log10 p-value (volume, share) or robust z-score (post)
    reason: str
    mention_keys: tuple[str, ...] = ()
    subject: str = ""           # the post's key for fast_post, '' for a brand-wide alert

    def __post_init__(self):
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"alert kind must be one of {', '.join(ALERT_KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class Run:
    """What one detection run did: alerts found (merged), which of them were new, deliveries tried."""

    found: list[Alert]
    new_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)


# -- the seasonal baseline ------------------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    rates: np.ndarray           # (7, 24): expected mentions per local hour, by day of week and hour of day
    negative_share: float
    days: int


def baseline(times: pd.Series, negative: pd.Series, start: pd.Timestamp, end: pd.Timestamp, tz: str) -> Baseline:
    """The seasonal rates of one brand from its mentions in [start, end), whole UTC days."""
    hours = pd.date_range(start, end, freq="h", inclusive="left")
    hourly = times.dt.floor("h")
    counts = hourly.value_counts().reindex(hours, fill_value=0).to_numpy(float).reshape(-1, 24)
    negatives = hourly[negative.to_numpy()].value_counts().reindex(hours, fill_value=0).to_numpy(float).reshape(-1, 24)
    totals = counts.sum(axis=1)
    cap = np.percentile(totals, 90)
    scale = np.divide(cap, totals, out=np.ones_like(totals), where=totals > cap)
    clean = (counts * scale[:, None]).ravel()
    level = clean.mean()
    local = hours.tz_localize("UTC").tz_convert(tz)
    by_day = _factor(clean, local.day_of_week.to_numpy(), 7, level)
    by_hour = _factor(clean, local.hour.to_numpy(), 24, level)
    calm = totals <= cap
    share = (negatives[calm].sum() + 1) / (counts[calm].sum() + 2)
    return Baseline(level * np.outer(by_day, by_hour), float(share), len(totals))


def _factor(counts: np.ndarray, index: np.ndarray, size: int, level: float) -> np.ndarray:
    seen = np.bincount(index, counts, size)
    expected = np.bincount(index, None, size) * level
    return (seen + PRIOR) / (expected + PRIOR)


# -- brand-wide windows -----------------------------------------------------------------------------

def brand_alerts(brand: str, mentions: pd.DataFrame, cfg: Alerts, tz: str, since: datetime,
                 now: datetime) -> list[Alert]:
    """Volume and negative-share alerts for one brand; `mentions` has created_at, negative, key."""
    mentions = mentions.sort_values("created_at").reset_index(drop=True)
    times = mentions["created_at"]
    grid = _grid(since - max(cfg.windows), now, cfg.step)
    expected, share = _expected_per_slice(grid, times, mentions["negative"], cfg, tz)
    edges = grid.to_numpy()
    # the newest slice is still filling: expect only what its elapsed part should hold
    elapsed = (np.datetime64(now) - edges[-2]) / np.timedelta64(int(cfg.step.total_seconds() * 1e6), "us")
    expected[-1] *= min(1.0, max(float(elapsed), 0.0))
    seen = np.concatenate([[0], np.cumsum(np.histogram(times.to_numpy(), edges)[0])])
    negatives = times.to_numpy()[mentions["negative"].to_numpy(bool)]
    negative = np.concatenate([[0], np.cumsum(np.histogram(negatives, edges)[0])])
    mu = np.concatenate([[0.0], np.cumsum(np.nan_to_num(expected))])
    unknown = np.concatenate([[0], np.cumsum(np.isnan(expected))])     # slices without a baseline yet
    out = []
    for window in cfg.windows:
        width = max(1, round(window / cfg.step))
        ends = np.arange(width, len(edges))
        ends = ends[edges[ends] > np.datetime64(since)]
        n = seen[ends] - seen[ends - width]
        k = negative[ends] - negative[ends - width]
        m = np.where(unknown[ends] > unknown[ends - width], np.nan, mu[ends] - mu[ends - width])
        p0 = share[ends - width]
        for end, count, neg, exp, base in zip(ends, n, k, m, p0):
            start_at, end_at = edges[end - width], min(edges[end], np.datetime64(now))
            found = [alert for alert in (_volume(brand, count, exp, start_at, end_at, window, cfg),
                                         _negative(brand, count, neg, base, start_at, end_at, window, cfg)) if alert]
            if found:
                keys = _keys(mentions, start_at, end_at)
                out += [replace(alert, mention_keys=keys) for alert in found]
    return out


def _grid(start: datetime, now: datetime, step: timedelta) -> pd.DatetimeIndex:
    """Slice edges every `step` (aligned to the epoch) from before `start` to just after `now`."""
    first = pd.Timestamp(start).floor(step)
    last = pd.Timestamp(now).ceil(step)
    if last <= pd.Timestamp(now):
        last += step
    return pd.date_range(first, last, freq=step)


def _expected_per_slice(grid: pd.DatetimeIndex, times: pd.Series, negative: pd.Series, cfg: Alerts,
                        tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Per slice of the grid: expected mentions (NaN without enough history) and the baseline negative share."""
    starts = grid[:-1]
    local = starts.tz_localize("UTC").tz_convert(tz)
    expected = np.full(len(starts), np.nan)
    share = np.full(len(starts), np.nan)
    first_day = times.min().floor("D") if len(times) else None
    step_hours = cfg.step / HOUR
    for day in starts.floor("D").unique():
        begin = max(day - pd.Timedelta(weeks=cfg.baseline_weeks), first_day) if first_day is not None else day
        if (day - begin).days < MIN_HISTORY_DAYS:
            continue
        inside = (times >= begin) & (times < day)
        base = baseline(times[inside], negative[inside], begin, day, tz)
        here = starts.floor("D") == day
        expected[here] = base.rates[local.day_of_week[here], local.hour[here]] * step_hours
        share[here] = base.negative_share
    return expected, share


def _keys(mentions: pd.DataFrame, start, end) -> tuple[str, ...]:
    times = mentions["created_at"].to_numpy()
    lo, hi = np.searchsorted(times, start), np.searchsorted(times, end)
    return tuple(mentions["key"].iloc[lo:hi])


def _volume(brand, count, expected, start, end, window, cfg: Alerts) -> Alert | None:
    if math.isnan(expected) or count < cfg.min_count or count < cfg.min_ratio * expected:
        return None
    score = _score(stats.poisson.logsf(count - 1, max(expected, 1e-3)))
    if score < -math.log10(cfg.p_value):
        return None
    reason = (f"{count} mentions of {brand} in {_span(window)}, {expected:.1f} expected for this hour and "
              f"weekday ({count / max(expected, 0.1):.0f}×, p < 1e-{int(score)})")
    return Alert("volume_spike", brand, _dt(start), _dt(end), float(count), round(float(expected), 3), score, reason)


def _negative(brand, count, negative, share, start, end, window, cfg: Alerts) -> Alert | None:
    if math.isnan(share) or negative < cfg.negative_min_count or negative / count < share + cfg.negative_increase:
        return None
    score = _score(stats.binom.logsf(negative - 1, count, share))
    if score < -math.log10(cfg.p_value):
        return None
    reason = (f"{negative} of {count} mentions of {brand} negative in {_span(window)} ({negative / count:.0%}), "
              f"{share:.0%} usually (p < 1e-{int(score)})")
    return Alert("negative_share", brand, _dt(start), _dt(end), round(negative / count, 4), round(share, 4),
                 score, reason)


def _score(log_sf: float) -> float:
    """-log10 of a p-value given as a natural log, capped."""
    return MAX_SCORE if not math.isfinite(log_sf) else min(MAX_SCORE, round(-log_sf / math.log(10), 2))


def _span(window: timedelta) -> str:
    hours = window / HOUR
    return f"{hours:g} h" if hours >= 1 else f"{window.total_seconds() / 60:g} min"


def _dt(value) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


# -- single posts ----------------------------------------------------------------------------------

def engagement(raw: dict) -> int | None:
    """Likes, reposts, replies and the like that `raw` carries, summed; None when it carries none."""
    total, found = 0, False
    for path in ENGAGEMENT_FIELDS:
        value: Any = raw
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += max(0, int(value))
            found = True
    return total if found else None


def fast_posts(posts: pd.DataFrame, cfg: Alerts) -> list[Alert]:
    """Posts whose engagement per hour since posting is abnormally high for their brand."""
    posts = posts.assign(engagement=posts["raw"].map(engagement)).dropna(subset=["engagement", "created_at",
                                                                                  "fetched_at"])
    if posts.empty:
        return []
    hours = ((posts["fetched_at"] - posts["created_at"]) / pd.Timedelta(hours=1)).clip(lower=0.25)
    posts = posts.assign(hours=hours, rate=posts["engagement"] / hours).explode("brands").dropna(subset=["brands"])
    out = []
    for brand, group in posts.groupby("brands"):
        logs = np.log1p(group["rate"].to_numpy(float))
        median = float(np.median(logs))
        mad = 1.4826 * float(np.median(np.abs(logs - median)))
        for row, value in zip(group.itertuples(index=False), logs):
            z = _robust_z(value, median, mad, len(group))
            if row.engagement < cfg.post_min_engagement or row.rate < cfg.post_per_hour or z < cfg.post_z:
                continue
            typical = math.expm1(median)
            reason = (f"post {row.key} by {plain_name(row.author) or 'unknown'}: {int(row.engagement):,} engagements in "
                      f"{row.hours:.1f} h ({row.rate:.0f}/h; typical for {brand} {typical:.1f}/h"
                      + (f", robust z {z:.1f})" if math.isfinite(z) and len(group) >= MIN_POSTS_FOR_Z else ")"))
            out.append(Alert("fast_post", str(brand), _dt(row.created_at), _dt(row.fetched_at), round(row.rate, 2),
                             round(typical, 2), round(min(z, MAX_SCORE), 2) if len(group) >= MIN_POSTS_FOR_Z else 0.0,
                             reason, (row.key,), subject=row.key))
    return out


def _robust_z(value: float, median: float, mad: float, posts: int) -> float:
    if posts < MIN_POSTS_FOR_Z:
        return math.inf          # too few posts to say what is normal: the absolute thresholds decide
    if mad == 0:
        return math.inf if value > median else 0.0
    return (value - median) / mad


# -- putting it together -----------------------------------------------------------------------------

def merge(found: list[Alert]) -> list[Alert]:
    """One alert per brand, kind and subject for each run of overlapping windows; the strongest evidence kept."""
    out: list[Alert] = []
    for alert in sorted(found, key=lambda a: (a.brand, a.kind, a.subject, a.window_start)):
        last = out[-1] if out else None
        if last and (last.brand, last.kind, last.subject) == (alert.brand, alert.kind, alert.subject) \
                and alert.window_start <= last.window_end:
            strong = alert if alert.score > last.score else last
            out[-1] = Alert(last.kind, last.brand, last.window_start, max(last.window_end, alert.window_end),
                            strong.value, strong.baseline, strong.score, strong.reason,
                            tuple(dict.fromkeys(last.mention_keys + alert.mention_keys)), last.subject)
        else:
            out.append(alert)
    return out


def detect(mentions: pd.DataFrame, posts: pd.DataFrame, cfg: Alerts, tz: str, since: datetime,
           now: datetime) -> list[Alert]:
    """Every alert in (since, now]: `mentions` (key, created_at, brands, sentiment) reach back far
    enough for the baseline; `posts` (key, created_at, fetched_at, brands, author, raw) are the
    recent ones."""
    found: list[Alert] = []
    frame = mentions.assign(negative=mentions["sentiment"] == "negative").explode("brands").dropna(subset=["brands"])
    for brand, group in frame.groupby("brands"):
        found += brand_alerts(str(brand), group, cfg, tz, since, now)
    if len(posts):
        found += fast_posts(posts, cfg)
    return merge(found)


def history_start(cfg: Alerts, since: datetime) -> datetime:
    """How far back detection over (since, now] reads mentions: the baseline of its first window's day."""
    first = pd.Timestamp(since - max(cfg.windows)).floor("D")
    return (first - pd.Timedelta(weeks=cfg.baseline_weeks)).to_pydatetime()


def run(store: Store, rules: Rules, since: timedelta = timedelta(days=7), now: datetime | None = None,
        sleep: Callable[[float], None] = time.sleep, deliver: bool = True) -> Run:
    """Detect alerts in the last `since`, store them (merged with stored ones), send the new ones."""
    from pipeline.store import alerts as store_alerts
    from pipeline.alerts import webhooks

    cfg = rules.alerts
    now = now or utcnow()
    start = now - since
    mentions = store_alerts.brand_mentions(store, history_start(cfg, start), now + timedelta(seconds=1))
    posts = store_alerts.post_snapshots(store, start, now + timedelta(seconds=1))
    found = detect(mentions, posts, cfg, rules.queue.timezone, start, now)
    saved = store_alerts.save_alerts(store, found, lambda alert: webhooks.targets(cfg.webhooks, alert),
                                     crisis_weight=rules.queue.weights.crisis)
    new = [i for i, fresh in saved if fresh]
    updated = [i for i, fresh in saved if not fresh]
    sent = webhooks.deliver(store, cfg, sleep=sleep) if deliver and cfg.webhooks else []
    log.info("alerts: %d found, %d new, %d updated, %d deliveries tried", len(found), len(new), len(updated), len(sent))
    return Run(found, new, updated, sent)


def after_classification(store: Store, rules: Rules, echo: Callable[[str], None] = log.info) -> Run | None:
    """Detection as a step of `ecoute demo` and `ecoute listen`: one line of outcome, never an exception.

    Alerts come after the mentions are safely stored and queued, so whatever goes wrong here (a
    locked database, a bug on odd data) is logged and reported, and the caller carries on.
    """
    if not rules.alerts.enabled:
        return None
    try:
        result = run(store, rules)
    except Exception as exc:  # noqa: BLE001 -- see the docstring; the traceback goes to the log
        log.exception("alert detection failed")
        echo(f"alerts: detection failed ({type(exc).__name__}: {exc}); mentions are stored and queued anyway")
        return None
    failed = [d for d in result.deliveries if d.error]
    echo(f"alerts: {len(result.new_ids)} new, {len(result.updated_ids)} updated"
         + (f", {len(result.deliveries) - len(failed)} webhook deliveries sent, {len(failed)} failed (retried next run)"
            if result.deliveries else ""))
    return result

"""Crisis detection on simulated series: false alerts per simulated month and detection delay of spikes.

    .venv/bin/python -m pipeline.bench.bench_alerts          # about a minute on 2 cores

Each brand's traffic is Poisson with a daily hump (quiet nights) and quieter weekends, at a given
peak rate per hour. False alerts: `volume_spike` alerts over four weeks of normal traffic after four
weeks of history. Delay: a spike of `factor`× the seasonal rate starts at a random minute of a
weekday's daytime; detection runs every 5 minutes (like a busy `ecoute listen`), and the delay is
the time from onset to the first run that alerts (a miss after 2 hours counts as a miss).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from pipeline.alerts.detection import detect
from pipeline.rules import Alerts

START = datetime(2026, 1, 5)          # a Monday
COLUMNS = ["key", "created_at", "brands", "sentiment"]


def hourly_rate(at: datetime, peak: float) -> float:
    """Quiet nights, a daytime hump, weekends at 60 %."""
    hump = 0.15 + 0.85 * np.sin(np.pi * (at.hour - 6) / 16) ** 2 if 6 <= at.hour <= 22 else 0.15
    return peak * hump * (0.6 if at.weekday() >= 5 else 1.0)


def seasonal(brand: str, days: int, peak: float, seed: int, negative: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for hour in range(days * 24):
        at = START + timedelta(hours=hour)
        for i in range(rng.poisson(hourly_rate(at, peak))):
            rows.append((f"{brand}-{hour}-{i}", at + timedelta(seconds=int(rng.integers(3600))), [brand],
                         "negative" if rng.random() < negative else "neutral"))
    return pd.DataFrame(rows, columns=COLUMNS)


def burst(brand: str, onset: datetime, hours: float, per_hour: float, seed: int, negative: float = 0.2,
          prefix: str = "spike") -> pd.DataFrame:
    """Extra mentions at a constant rate from `onset` on."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(0, hours * 3600, rng.poisson(per_hour * hours))
    return pd.DataFrame([(f"{prefix}-{i}", onset + timedelta(seconds=float(s)), [brand],
                          "negative" if rng.random() < negative else "neutral") for i, s in enumerate(offsets)],
                        columns=COLUMNS)


def false_alerts(peak: float, seed: int, cfg: Alerts = Alerts()) -> int:
    frame = seasonal("B", 56, peak, seed)
    now = START + timedelta(days=56)
    return sum(a.kind == "volume_spike" for a in detect(frame, pd.DataFrame(), cfg, "UTC", now - timedelta(days=28), now))


def delay(peak: float, factor: float, seed: int, cfg: Alerts = Alerts()) -> float | None:
    """Minutes from a spike's onset to the first 5-minute run that alerts; None when missed for 2 hours."""
    rng = np.random.default_rng(seed)
    onset = START + timedelta(days=35 + int(rng.integers(0, 5)), hours=int(rng.integers(9, 17)),
                              minutes=int(rng.integers(0, 60)))
    frame = pd.concat([seasonal("B", 36, peak, seed),
                       burst("B", onset, 2, (factor - 1) * hourly_rate(onset, peak), seed + 1)])
    for minutes in range(5, 125, 5):
        now = onset + timedelta(minutes=minutes)
        found = detect(frame[frame["created_at"] < now], pd.DataFrame(), cfg, "UTC", now - timedelta(hours=1), now)
        if any(a.kind == "volume_spike" for a in found):
            return float((now - onset) / timedelta(minutes=1))
    return None


def main(peaks=(2, 8, 30, 120), runs: int = 5) -> None:
    print("peak/h | false volume alerts per 4 weeks (5 series) | 5x spike: median delay, worst, missed")
    for peak in peaks:
        falses = [false_alerts(peak, seed) for seed in range(runs)]
        delays = [delay(peak, 5, 100 + seed) for seed in range(runs)]
        found = sorted(d for d in delays if d is not None)
        timing = f"{np.median(found):.0f} min, {max(found):.0f} min" if found else "-, -"
        print(f"{peak} | {falses} | {timing}, {len(delays) - len(found)} of {runs} missed")


if __name__ == "__main__":
    main()

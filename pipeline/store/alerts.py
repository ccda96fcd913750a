"""The SQL of alerts (split from store.py by table family): alerts, their webhook deliveries, and
what detection reads from mentions.

An alert's identity is (brand, kind, subject): subject is '' for a brand-wide alert and the mention's
key for a fast-growing post. Saving an alert whose window overlaps a stored one of the same identity
updates that one (wider window, the strongest evidence, the union of mentions): a crisis scanned
every 15 minutes, or rescanned by every listener cycle, stays one alert.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.store import (OPEN_STATUSES, Store, case_mentions, classifications, mentions, metadata, queue_items,
                            utcnow)

if TYPE_CHECKING:
    from pipeline.alerts.detection import Alert

MAX_KEYS = 500          # mention keys kept per alert: enough to show, not a copy of the store

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),       # volume_spike, negative_share, fast_post
    sa.Column("brand", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False, default=""),   # a post's key for fast_post
    sa.Column("window_start", sa.DateTime, nullable=False),
    sa.Column("window_end", sa.DateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=False),           # what was seen: mentions, a share, engagement/h
    sa.Column("baseline", sa.Float, nullable=False),        # what was expected
    sa.Column("score", sa.Float, nullable=False),           # -log10 p-value, or a robust z-score
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("mention_keys", sa.Text, nullable=False),     # JSON list
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
sa.Index("ix_alerts_identity", alerts.c.brand, alerts.c.kind, alerts.c.subject, alerts.c.window_end)

alert_deliveries = sa.Table(
    "alert_deliveries", metadata,
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), primary_key=True),
    sa.Column("webhook", sa.String(120), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),   # pending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("last_attempt_at", sa.DateTime),
    sa.Column("sent_at", sa.DateTime),
)


def create_tables(conn: Connection) -> None:
    """Migration 0004_alerts."""
    metadata.create_all(conn, tables=[alerts, alert_deliveries])


def brand_mentions(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Relevant, live mentions posted in [start, end): key, created_at, brands (list), sentiment."""
    query = (sa.select(mentions.c.key, mentions.c.created_at, classifications.c.brands, classifications.c.sentiment)
             .select_from(mentions.join(classifications, classifications.c.mention_key == mentions.c.key))
             .where(classifications.c.relevant.is_(True), mentions.c.deleted_at.is_(None),
                    mentions.c.created_at >= start, mentions.c.created_at < end))
    with store.engine.connect() as c:
        frame = pd.read_sql(query, c)
    frame["brands"] = frame["brands"].map(json.loads)
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    return frame


def post_snapshots(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    """Relevant, live mentions posted in [start, end) with their raw payload as last fetched."""
    query = (sa.select(mentions.c.key, mentions.c.created_at, mentions.c.fetched_at, mentions.c.url,
                       mentions.c.author, mentions.c.author_followers, mentions.c.raw, classifications.c.brands)
             .select_from(mentions.join(classifications, classifications.c.mention_key == mentions.c.key))
             .where(classifications.c.relevant.is_(True), mentions.c.deleted_at.is_(None),
                    mentions.c.created_at >= start, mentions.c.created_at < end))
    with store.engine.connect() as c:
        frame = pd.read_sql(query, c)
    frame["brands"] = frame["brands"].map(json.loads)
    frame["raw"] = frame["raw"].map(lambda v: json.loads(v) if isinstance(v, str) and v else {})
    for column in ("created_at", "fetched_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def save_alerts(store: Store, found: Iterable["Alert"], targets: Callable[["Alert"], list[str]],
                crisis_weight: float = 15.0) -> list[tuple[int, bool]]:
    """Store alerts, merging each into a stored one of the same identity whose window overlaps it.

    A new alert gets a pending delivery for each webhook `targets(alert)` names; an updated one is not
    sent again. The alert's mentions are members of a crisis: each gets `crisis_weight` more
    priority once (rules `queue.weights.crisis`) and a reason saying so, and their open cases rise
    with them. Returns (alert id, is new) per alert, in order; one transaction.
    """
    out = []
    now = utcnow()
    found = list(found)     # read twice: stored, then their mentions marked
    with store.engine.begin() as c:
        for alert in found:
            row = c.execute(sa.select(alerts).where(
                alerts.c.brand == alert.brand, alerts.c.kind == alert.kind, alerts.c.subject == alert.subject,
                alerts.c.window_start <= alert.window_end, alerts.c.window_end >= alert.window_start)
                .order_by(alerts.c.id).limit(1)).mappings().first()
            if row is None:
                alert_id = c.execute(alerts.insert().values(**_alert_row(alert), created_at=now, updated_at=now)
                                     ).inserted_primary_key[0]
                for name in targets(alert):
                    c.execute(alert_deliveries.insert().values(alert_id=alert_id, webhook=name, status="pending",
                                                               attempts=0))
                out.append((int(alert_id), True))
                continue
            c.execute(alerts.update().where(alerts.c.id == row["id"]).values(**_merged(row, alert), updated_at=now))
            out.append((int(row["id"]), False))
        for alert in found:
            mark_crisis(c, alert, crisis_weight)
    return out


def crisis_reason(alert: "Alert") -> str:
    what = {"volume_spike": "volume spike", "negative_share": "negative-share rise", "fast_post": "fast-growing post"}
    return f"crisis: {what.get(alert.kind, alert.kind.replace('_', ' '))} for {alert.brand}"


def mark_crisis(c: Connection, alert: "Alert", weight: float) -> int:
    """Raise the priority of the alert's mentions (once each) and of the open cases holding them."""
    keys = list(alert.mention_keys[:MAX_KEYS])
    reason, raised = crisis_reason(alert), 0
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        rows = c.execute(sa.select(classifications.c.mention_key, classifications.c.priority,
                                   classifications.c.reasons).where(classifications.c.mention_key.in_(chunk))).all()
        bumped: dict[str, int] = {}
        for key, priority, reasons in rows:
            listed = json.loads(reasons) if reasons else []
            if any(str(r).startswith("crisis:") for r in listed):
                continue
            bumped[key] = int(round(min(100, priority + weight)))
            c.execute(classifications.update().where(classifications.c.mention_key == key).values(
                priority=bumped[key], reasons=json.dumps([*listed, reason], ensure_ascii=False)))
        for case_id, key in c.execute(sa.select(case_mentions.c.case_id, case_mentions.c.mention_key)
                                      .where(case_mentions.c.mention_key.in_(list(bumped)))).all():
            c.execute(queue_items.update().where(queue_items.c.id == case_id,
                                                 queue_items.c.status.in_(OPEN_STATUSES),
                                                 queue_items.c.priority < bumped[key])
                      .values(priority=bumped[key]))
        raised += len(bumped)
    return raised


def _alert_row(alert: "Alert") -> dict:
    return {"kind": alert.kind, "brand": alert.brand, "subject": alert.subject, "window_start": alert.window_start,
            "window_end": alert.window_end, "value": alert.value, "baseline": alert.baseline, "score": alert.score,
            "reason": alert.reason, "mention_keys": json.dumps(list(alert.mention_keys[:MAX_KEYS]))}


def _merged(row, alert: "Alert") -> dict:
    """The stored alert widened to cover the new window; the stronger evidence of the two is kept."""
    keys = list(dict.fromkeys([*json.loads(row["mention_keys"]), *alert.mention_keys]))[:MAX_KEYS]
    values = {"window_start": min(row["window_start"], alert.window_start),
              "window_end": max(row["window_end"], alert.window_end), "mention_keys": json.dumps(keys)}
    if alert.score > row["score"]:
        values.update(value=alert.value, baseline=alert.baseline, score=alert.score, reason=alert.reason)
    return values


def list_alerts(store: Store, since: datetime | None = None, brand: str | None = None,
                limit: int = 500) -> pd.DataFrame:
    """Stored alerts, the latest window first, with how their deliveries went (`deliveries`: webhook → status)."""
    query = sa.select(alerts).order_by(alerts.c.window_end.desc(), alerts.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(alerts.c.window_end >= since)
    if brand:
        query = query.where(alerts.c.brand == brand)
    with store.engine.connect() as c:
        frame = pd.read_sql(query, c)
        sent = pd.read_sql(sa.select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(
            [int(i) for i in frame["id"]])), c) if len(frame) else pd.DataFrame(columns=["alert_id"])
    frame["mention_keys"] = frame["mention_keys"].map(json.loads)
    by_alert = {k: dict(zip(g["webhook"], g["status"])) for k, g in sent.groupby("alert_id")} if len(sent) else {}
    frame["deliveries"] = frame["id"].map(lambda i: by_alert.get(i, {}))
    return frame


def due_deliveries(store: Store, created_after: datetime) -> pd.DataFrame:
    """Deliveries not yet sent, of alerts created after `created_after`, oldest alert first."""
    query = (sa.select(alert_deliveries, *[c for c in alerts.c if c.name != "id"])
             .select_from(alert_deliveries.join(alerts, alerts.c.id == alert_deliveries.c.alert_id))
             .where(alert_deliveries.c.status != "sent", alerts.c.created_at >= created_after)
             .order_by(alerts.c.created_at, alert_deliveries.c.alert_id))
    with store.engine.connect() as c:
        frame = pd.read_sql(query, c)
    frame["mention_keys"] = frame["mention_keys"].map(json.loads)
    return frame


def deliveries(store: Store) -> pd.DataFrame:
    with store.engine.connect() as c:
        return pd.read_sql(sa.select(alert_deliveries).order_by(alert_deliveries.c.alert_id,
                                                                 alert_deliveries.c.webhook), c)


def record_delivery(store: Store, alert_id: int, webhook: str, attempts: int, error: str | None) -> None:
    """After trying one delivery: sent (error None) or failed with the last error; attempts add up."""
    now = utcnow()
    values = {"status": "failed", "last_error": (error or "")[:2000]} if error else \
        {"status": "sent", "last_error": None, "sent_at": now}
    with store.engine.begin() as c:
        c.execute(alert_deliveries.update()
                  .where(alert_deliveries.c.alert_id == alert_id, alert_deliveries.c.webhook == webhook)
                  .values(attempts=alert_deliveries.c.attempts + attempts, last_attempt_at=now, **values))


def transparency_risks(store: Store, limit: int = 500) -> pd.DataFrame:
    """Live mentions the pipeline flagged with a transparency risk, newest first (risks and reasons as lists)."""
    query = (sa.select(mentions.c.key, mentions.c.created_at, mentions.c.source, mentions.c.author, mentions.c.url,
                       mentions.c.text, classifications.c.brands, classifications.c.transparency,
                       classifications.c.reasons)
             .select_from(mentions.join(classifications, classifications.c.mention_key == mentions.c.key))
             .where(classifications.c.transparency != "[]", mentions.c.deleted_at.is_(None))
             .order_by(mentions.c.created_at.desc()).limit(limit))
    with store.engine.connect() as c:
        frame = pd.read_sql(query, c)
    for column in ("brands", "transparency", "reasons"):
        frame[column] = frame[column].map(json.loads)
    return frame

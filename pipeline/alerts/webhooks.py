"""Alerts out to webhooks: Slack- and Teams-compatible JSON, retried with backoff, every try recorded.

Each new alert gets one delivery per webhook whose `kinds` it matches. A run tries each due delivery
up to `alerts.attempts` times (the webhook's short `timeout`; waits from `Retry-After`, else
exponential with jitter, at most 10 s) and records it: sent, or failed with attempts and the last
error. Failed ones are tried again by later runs until their alert is older than `give_up_after`; a
sent one is never sent again. A webhook that fails every attempt is skipped for the rest of the run,
so a dead endpoint costs one delivery's worth of time, not one per alert. Only network and HTTP
failures are expected here; nothing a webhook answers can stop the pipeline.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests

from listeners.base import Backoff, retry_after_seconds

from pipeline.store import alerts as store_alerts
from pipeline.desk.redaction import redact
from pipeline.rules import Alerts, Webhook
from pipeline.store import Store, utcnow

log = logging.getLogger(__name__)
MAX_WAIT = 10.0
USER_AGENT = "ecoute-alerts/0.1"
TITLES = {"volume_spike": "Mention spike", "negative_share": "Negative share rising", "fast_post": "Fast-growing post"}


@dataclass(frozen=True)
class Delivery:
    """One delivery tried in this run: sent when `error` is None."""

    alert_id: int
    webhook: str
    attempts: int
    error: str | None


def targets(webhooks: list[Webhook], alert: Any) -> list[str]:
    """The webhooks an alert goes to: those without `kinds`, and those listing its kind."""
    return [hook.name for hook in webhooks if not hook.kinds or alert.kind in hook.kinds]


def payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Slack and Teams incoming webhooks show `text`; the same facts follow as fields for other receivers.

    Slack reads `<…>` as links and mentions (`<!channel>`), so &, < and > in the text are escaped.
    """
    start, end = alert["window_start"], alert["window_end"]
    text = (f"{TITLES.get(alert['kind'], alert['kind'])} for {alert['brand']}: {alert['reason']} "
            f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)")
    keys = list(alert.get("mention_keys") or [])
    return {"text": escape(text),
            "alert": {"id": int(alert["id"]), "kind": alert["kind"], "brand": alert["brand"],
                      "window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "window_end": f"{end:%Y-%m-%dT%H:%M:%SZ}",
                      "value": float(alert["value"]), "baseline": float(alert["baseline"]),
                      "score": float(alert["score"]), "reason": alert["reason"], "mentions": len(keys),
                      "mention_keys": keys[:20]}}


def escape(text: str) -> str:
    """&, < and > escaped: Slack reads `<…>` as links and mentions (alerts and case notifications alike)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unset_url(hook: Webhook) -> str:
    """The error recorded for a webhook whose `url_env` variable is not set."""
    return f"environment variable {hook.url_env} is not set (alerts.webhooks '{hook.name}')"


def post(url: str, body: dict, attempts: int, backoff: float, timeout: float,
         sleep: Callable[[float], None] = time.sleep) -> tuple[int, str | None]:
    """POST `body` as JSON until a 2xx answer; returns (attempts made, last error or None)."""
    waits = Backoff(base=backoff, cap=MAX_WAIT)
    error = None
    for attempt in range(1, attempts + 1):
        hint = None
        try:
            response = requests.post(url, json=body, timeout=timeout, headers={"User-Agent": USER_AGENT})
        except requests.RequestException as exc:
            error = redact(f"{type(exc).__name__}: {exc}", url, secret_path=True)
        else:
            if response.status_code < 300:
                return attempt, None
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            hint = retry_after_seconds(response.headers)
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                return attempt, error   # a wrong URL or payload: asking again will not help this run
        if attempt < attempts:
            seconds = min(waits.next_wait(hint), MAX_WAIT)
            log.warning("webhook %s: %s; retrying in %.1f s", urlsplit(url).hostname, error, seconds)
            sleep(seconds)
    return attempts, error


def deliver(store: Store, cfg: Alerts, sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Try every due delivery once per run (with its retries); record each outcome."""
    hooks = {hook.name: hook for hook in cfg.webhooks}
    broken: set[str] = set()
    out = []
    for row in store_alerts.due_deliveries(store, utcnow() - cfg.give_up_after).to_dict("records"):
        hook = hooks.get(row["webhook"])
        if hook is None or hook.name in broken:
            continue          # removed from rules.yaml, or already failing in this run
        url = hook.resolved_url()
        if url is None:
            attempts, error = 0, unset_url(hook)
        else:
            attempts, error = post(url, payload({**row, "id": row["alert_id"]}), cfg.attempts,
                                   cfg.backoff.total_seconds(), hook.timeout.total_seconds(), sleep)
        store_alerts.record_delivery(store, row["alert_id"], hook.name, attempts, error)
        if error:
            broken.add(hook.name)
            log.warning("alert %s not delivered to %s: %s", row["alert_id"], hook.name, error)
        out.append(Delivery(int(row["alert_id"]), hook.name, attempts, error))
    return out

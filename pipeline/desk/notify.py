"""Case notifications out: an automation's `notify` and SLA escalation, to webhooks and e-mail addresses.

Each `case_notifications` row is one case, reason (an automation's name, or the stage due_soon /
breached) and target. A target is a webhook's name in `alerts.webhooks` (Slack- and Teams-
compatible JSON, as alerts are posted) or an e-mail address (sent through rules.yaml's `smtp`).
Delivery is retried like alert deliveries: `alerts.attempts` tries per run with `alerts.backoff`,
attempts and the last error kept on the row, later runs trying again until the row is older than
`alerts.give_up_after`; a sent row is never sent again, and a target that failed is skipped for the
rest of the run. Each sent notification is a 'notified' event on the case's timeline.

The post's text and its author are hostile input: in the webhook text each is one line in a code
span, backticks taken out, with &, < and > escaped (Slack reads `<…>` as links and mentions, Teams renders
markdown), so it can neither ping a channel nor show a link of its own.
"""
from __future__ import annotations

import json
import logging
import os
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Callable

import sqlalchemy as sa

from listeners.base import Backoff

from pipeline.alerts import webhooks
from pipeline.rules import Rules
from pipeline.store import Store, case_notifications, classifications, mentions, queue_items, utcnow

log = logging.getLogger(__name__)
DASHBOARD_URL_ENV = "ECOUTE_DASHBOARD_URL"     # e.g. https://desk.example.com: notifications link to the case
EXCERPT_CHARS = 280
STAGES = {"due_soon": "is due soon", "breached": "has breached its first-response SLA"}


@dataclass(frozen=True)
class Sent:
    """One notification tried in this run: sent when `error` is None."""

    notification_id: int
    case_id: int
    target: str
    attempts: int
    error: str | None


def case_link(case_id: int) -> str:
    """Where the case opens: the dashboard's case page when $ECOUTE_DASHBOARD_URL is set, else its number."""
    base = os.environ.get(DASHBOARD_URL_ENV, "").strip().rstrip("/")
    return f"{base}/case?case={case_id}" if base.lower().startswith(("https://", "http://")) else f"case #{case_id}"


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The post on one line, cut to `limit` characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def headline(row: dict) -> str:
    """Why this notification is sent, in words, without post text."""
    if row["kind"] in STAGES:
        due = row.get("due_at")
        return f"Case #{row['case_id']} {STAGES[row['kind']]}" + (f" (due {due:%Y-%m-%d %H:%M} UTC)" if due else "")
    return f"Case #{row['case_id']}: automation '{row['name']}'"


def _code(text: str) -> str:
    """Untrusted text (a post, an author's handle) as an inline code span: no formatting, links or mentions."""
    return f"`{webhooks.escape(text.replace('`', chr(39)))}`"


def payload(row: dict) -> dict[str, Any]:
    """Slack and Teams show `text`; the facts follow as fields for other receivers."""
    brands = ", ".join(row.get("brands") or [])
    author = _code(row.get("author") or "unknown author")
    who = f"{author} on {webhooks.escape(row.get('source') or '?')}" + (f" about {webhooks.escape(brands)}" if brands else "")
    post = excerpt(row.get("text"))
    text = (f"{webhooks.escape(headline(row))}. {who}, priority {row['priority']}"
            + (f": {_code(post)}" if post else "") + f" — {case_link(row['case_id'])}")
    return {"text": text,
            "case": {"id": int(row["case_id"]), "kind": row["kind"], "name": row["name"],
                     "status": row["status"], "priority": int(row["priority"]), "team": row.get("team"),
                     "due_at": f"{row['due_at']:%Y-%m-%dT%H:%M:%SZ}" if row.get("due_at") else None,
                     "link": case_link(row["case_id"])}}


def email(row: dict, sender: str) -> EmailMessage:
    """A plain-text e-mail: no markup to escape, the post quoted as written (one line)."""
    message = EmailMessage()
    message["Subject"] = headline(row)
    message["From"] = sender
    message["To"] = row["target"]
    lines = [headline(row) + ".", "",
             f"Author: {row.get('author') or 'unknown'} on {row.get('source') or '?'}",
             f"Brands: {', '.join(row.get('brands') or []) or '-'}", f"Priority: {row['priority']}",
             f"Post: {excerpt(row.get('text'))}", "", f"Open it: {case_link(row['case_id'])}"]
    message.set_content("\n".join(lines))
    return message


def pending(store: Store, since: datetime) -> list[dict]:
    """Unsent notifications created since `since`, oldest first, with their case and its latest mention."""
    query = (sa.select(case_notifications, queue_items.c.status, queue_items.c.priority, queue_items.c.due_at,
                       queue_items.c.team, mentions.c.author, mentions.c.source, mentions.c.text,
                       classifications.c.brands)
             .select_from(case_notifications.join(queue_items, queue_items.c.id == case_notifications.c.case_id)
                          .outerjoin(mentions, mentions.c.key == queue_items.c.mention_key)
                          .outerjoin(classifications, classifications.c.mention_key == queue_items.c.mention_key))
             .where(case_notifications.c.sent_at.is_(None), case_notifications.c.created_at >= since)
             .order_by(case_notifications.c.id))
    with store.engine.connect() as c:
        rows = [dict(row._mapping) for row in c.execute(query)]
    for row in rows:
        row["brands"] = json.loads(row["brands"] or "[]")
    return rows


def deliver(store: Store, rules: Rules, sleep: Callable[[float], None] = time.sleep,
            now: datetime | None = None) -> list[Sent]:
    """Try every pending notification once per run (with its retries); record each outcome."""
    cfg = rules.alerts
    now = now or utcnow()
    broken: set[str] = set()
    out = []
    for row in pending(store, now - cfg.give_up_after):
        if row["target"] in broken:
            continue
        attempts, error = send(row, rules, sleep)
        record(store, row, attempts, error)
        if error:
            broken.add(row["target"])
            log.warning("case %s: notification to %s not sent: %s", row["case_id"], row["target"], error)
        out.append(Sent(int(row["id"]), int(row["case_id"]), row["target"], attempts, error))
    return out


def send(row: dict, rules: Rules, sleep: Callable[[float], None] = time.sleep) -> tuple[int, str | None]:
    """Send one notification to its webhook or address; (attempts made, last error or None)."""
    cfg = rules.alerts
    hook = next((h for h in cfg.webhooks if h.name == row["target"]), None)
    if hook is not None:
        url = hook.resolved_url()
        if url is None:
            return 0, webhooks.unset_url(hook)
        return webhooks.post(url, payload(row), cfg.attempts, cfg.backoff.total_seconds(),
                             hook.timeout.total_seconds(), sleep)
    if "@" in row["target"]:
        if rules.smtp is None:
            return 0, f"{row['target']} is an e-mail address, but rules.yaml has no 'smtp' section"
        return _send_email(row, rules, sleep)
    return 0, f"'{row['target']}' is neither a webhook in alerts.webhooks nor an e-mail address"


def _send_email(row: dict, rules: Rules, sleep: Callable[[float], None]) -> tuple[int, str | None]:
    from pipeline.alerts.digests import send_smtp

    smtp, cfg = rules.smtp, rules.alerts
    waits = Backoff(base=cfg.backoff.total_seconds(), cap=webhooks.MAX_WAIT)
    error = None
    for attempt in range(1, cfg.attempts + 1):
        try:
            send_smtp(smtp, email(row, smtp.sender))
            return attempt, None
        except (OSError, smtplib.SMTPException) as exc:
            error = f"e-mail via {smtp.smtp_host}:{smtp.smtp_port}: {type(exc).__name__}: {exc}"[:500]
        if attempt < cfg.attempts:
            sleep(min(waits.next_wait(), webhooks.MAX_WAIT))
    return cfg.attempts, error


def record(store: Store, row: dict, attempts: int, error: str | None) -> None:
    """Attempts and the last error on the row; a sent one gets `sent_at` and a 'notified' timeline event."""
    now = utcnow()
    values: dict[str, Any] = {"attempts": case_notifications.c.attempts + attempts, "last_error": error}
    if error is None:
        values["sent_at"] = now
    with store.engine.begin() as c:
        done = c.execute(case_notifications.update().where(case_notifications.c.id == row["id"],
                                                           case_notifications.c.sent_at.is_(None)).values(**values))
        if error is None and done.rowcount == 1:
            store._event(c, row["case_id"], "notify", "notified",
                         detail={"kind": row["kind"], "name": row["name"], "target": row["target"]})


def after_run(store: Store, rules: Rules, echo: Callable[[str], None] = log.info) -> list[Sent]:
    """Delivery as a step of classification and `ecoute listen`: one line of outcome, never an exception.
    The cases are stored already; a notification that fails here is retried by the next run."""
    try:
        sent = deliver(store, rules)
    except Exception as exc:  # noqa: BLE001 -- the caller carries on; the traceback goes to the log
        log.exception("case notifications failed")
        echo(f"notifications: delivery failed ({type(exc).__name__}: {exc}); retried next run")
        return []
    if sent:
        failed = [s for s in sent if s.error]
        echo(f"notifications: {len(sent) - len(failed)} sent, {len(failed)} failed (retried next run)")
    return sent

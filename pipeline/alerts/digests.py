"""Digests: `ecoute report` on a schedule, to webhooks (a text summary) and by e-mail (the report).

A digest is due when its latest scheduled moment (daily or weekly at `at`, local time in
`queue.timezone`) has passed since it was last sent; each sending is recorded in the audit log
(action 'digest'), which is also how a restart knows what was sent. A digest whose every delivery
failed is not recorded, so the next run tries again. SMTP credentials come from the environment
variables named by `username_env` / `password_env`, never from rules.yaml.
"""
from __future__ import annotations

import json
import logging
import os
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Callable
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from pipeline.analytics import report as reports
from pipeline.rules import WEEKDAYS, Digest, Rules, Smtp
from pipeline.store import Store, audit_log, utcnow

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    digest: str
    sent_to: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> bool:
        return bool(self.sent_to)


def latest_slot(digest: Digest, now: datetime, tz: str) -> datetime:
    """The most recent scheduled moment at or before `now` (naive UTC in, naive UTC out)."""
    zone = ZoneInfo(tz)
    local = now.replace(tzinfo=timezone.utc).astimezone(zone)
    slot = local.replace(hour=digest.at.hour, minute=digest.at.minute, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    if digest.schedule == "weekly":
        slot -= timedelta(days=(slot.weekday() - WEEKDAYS.index(digest.weekday)) % 7)
    return slot.astimezone(timezone.utc).replace(tzinfo=None)


def last_sent(store: Store, name: str) -> datetime | None:
    query = (sa.select(audit_log.c.at, audit_log.c.detail).where(audit_log.c.action == "digest")
             .order_by(audit_log.c.id.desc()).limit(500))
    with store.engine.connect() as conn:
        for at, detail in conn.execute(query):
            if json.loads(detail or "{}").get("name") == name:
                return at
    return None


def is_due(digest: Digest, store: Store, now: datetime, tz: str) -> bool:
    sent = last_sent(store, digest.name)
    return sent is None or sent < latest_slot(digest, now, tz)


def summary(report: reports.Report, name: str) -> str:
    """The webhook text: figures only (no post text), Slack/Teams-safe."""
    lines = [f"Écoute digest '{name}': {report.start:%Y-%m-%d} to {report.end:%Y-%m-%d %H:%M} UTC"]
    for brand, volume, negative, net, sov in reports.headline_rows(report):
        lines.append(f"• {brand}: {volume} mentions, negative {negative}, net sentiment {net}, share of voice {sov}")
    for goal, brand, now, target, status in reports.goal_rows(report):
        lines.append(f"• Goal '{goal}' ({brand}): {now} against {target}, {status}")
    lines.append(f"• {len(report.alerts)} alert(s), {len(report.complaints)} top complaint(s), "
                 f"{len(report.risks)} transparency risk(s)")
    text = "\n".join(lines)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_message(digest: Digest, report: reports.Report) -> EmailMessage:
    """The report as an e-mail: Markdown as the plain-text part, the HTML report as the alternative."""
    message = EmailMessage()
    message["Subject"] = f"{report.title} ({report.start:%d %b} to {report.end:%d %b})"
    message["From"] = digest.email.sender
    message["To"] = ", ".join(digest.email.to)
    message.set_content(reports.to_markdown(report))
    if digest.format == "html":
        message.add_alternative(reports.to_html(report), subtype="html")
    return message


def send_email(digest: Digest, message: EmailMessage) -> None:
    send_smtp(digest.email, message)


def send_smtp(cfg: Smtp, message: EmailMessage) -> None:
    """Send one message through an SMTP server (a digest's `email`, or rules.yaml's `smtp` for case
    notifications); the login comes from the environment variables the section names."""
    user, password = os.environ.get(cfg.username_env), os.environ.get(cfg.password_env)
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout.total_seconds()) as smtp:
        if cfg.starttls:
            smtp.starttls()
        if user:
            smtp.login(user, password or "")
        smtp.send_message(message)


def send(digest: Digest, rules: Rules, store: Store, now: datetime | None = None,
         post: Callable | None = None) -> Outcome:
    """Build the digest's report for the `period` up to now and deliver it everywhere it goes."""
    from pipeline.alerts import webhooks

    now = now or utcnow()
    report = reports.build(rules, since=now - digest.period, until=now, db=store, brand=digest.brand)
    outcome = Outcome(digest.name)
    body = {"text": summary(report, digest.name),
            "digest": {"name": digest.name, "start": report.start.isoformat(), "end": report.end.isoformat(),
                       "alerts": len(report.alerts)}}
    for hook in digest.webhooks:
        url = hook.resolved_url()
        if not url:
            outcome.errors.append(f"webhook {hook.name}: ${hook.url_env} is not set")
            continue
        attempts, error = (post or webhooks.post)(url, body, 3, 1.0, hook.timeout.total_seconds())
        (outcome.errors.append(f"webhook {hook.name}: {error}") if error else outcome.sent_to.append(hook.name))
    if digest.email:
        try:
            send_email(digest, email_message(digest, report))
            outcome.sent_to.append("email:" + ",".join(digest.email.to))
        except (OSError, smtplib.SMTPException) as exc:
            outcome.errors.append(f"e-mail via {digest.email.smtp_host}:{digest.email.smtp_port}: "
                                  f"{type(exc).__name__}: {exc}")
    if outcome.sent:
        store.record("digest", "digest", {"name": digest.name, "sent_to": outcome.sent_to, "errors": outcome.errors})
    return outcome


def run_due(rules: Rules, store: Store, now: datetime | None = None, names: tuple[str, ...] = (),
            force: bool = False) -> list[Outcome]:
    """Send every due digest (or those named; `force`: even when not due)."""
    now = now or utcnow()
    out = []
    for digest in rules.digests:
        if names and digest.name not in names:
            continue
        if force or is_due(digest, store, now, rules.queue.timezone):
            out.append(send(digest, rules, store, now))
    return out

"""SLA escalation: a case nobody answered notifies its team's channel when due soon and again at breach,
once per stage, retried after a failing webhook, by e-mail too, and recorded on the timeline.

Runs on SQLite and, when ECOUTE_TEST_PG points at a PostgreSQL cluster, on PostgreSQL too.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.desk.escalation import escalate, stage_of
from pipeline.mention import Labels, Mention
from pipeline.rules import parse_rules
from pipeline.store import Store
from tests.pipeline.alerts.test_alerts import hooks  # noqa: F401 -- a fixture
from tests.pipeline.analytics.test_report import smtp_server  # noqa: F401 -- a fixture

POSTED = datetime(2026, 11, 20, 10, 0)           # naive UTC, as the store keeps times; a Friday
DUE = POSTED + timedelta(hours=1)


def desk_rules(lead_url: str, paris_url: str, extra: str = ""):
    return parse_rules(f"""
brands:
  - name: Aerolia
    keywords: [aerolia]
queue:
  first_response_sla: 1h
  due_soon: 15m
  escalation: {{due_soon: [leads], breached: [leads]}}
teams:
  - name: paris
    members: [ana]
    escalation: {{due_soon: [paris-chat], breached: [paris-chat, leads]}}
alerts:
  backoff: 0s
  attempts: 2
  webhooks:
    - {{name: leads, url: "{lead_url}"}}
    - {{name: paris-chat, url: "{paris_url}"}}
{extra}""")


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def open_case(store, rules, i=1, author="@dan") -> int:
    m = Mention(source="twitter", source_id=str(i), text="@aerolia where is my bag", author=author,
                created_at=POSTED.replace(tzinfo=timezone.utc))
    store.save_mentions([m])
    store.save_labels([Labels(m.key, "en", True, ("Aerolia",), "negative", 0.9, True, 0.9, "complaint", True, 50,
                              model="test")], rules.queue)
    return int(store.queue().set_index("key").loc[m.key, "id"])


def set_team(store, case_id: int, team: str) -> None:
    from pipeline.store import queue_items

    with store.engine.begin() as c:
        c.execute(queue_items.update().where(queue_items.c.id == case_id).values(team=team))


def escalations(store, case_id: int) -> list[str]:
    timeline = store.case(case_id)["timeline"]
    return [json.loads(d)["stage"] for d in timeline[timeline["kind"] == "escalated"]["detail"]]


def test_stages_follow_the_due_time():
    rules = desk_rules("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    assert stage_of(DUE, DUE - timedelta(minutes=16), rules) is None
    assert stage_of(DUE, DUE - timedelta(minutes=15), rules) == "due_soon"
    assert stage_of(DUE, DUE, rules) == "breached"
    assert stage_of(None, DUE, rules) is None


def test_escalation_fires_once_at_due_soon_and_once_at_breach(store, hooks):
    leads = hooks()
    rules = desk_rules(leads.url, hooks().url)
    case_id = open_case(store, rules)
    assert escalate(store, rules, now=DUE - timedelta(minutes=30)).stages == []
    first = escalate(store, rules, now=DUE - timedelta(minutes=10))
    assert first.stages == [(case_id, "due_soon")] and [s.error for s in first.sent] == [None]
    assert escalate(store, rules, now=DUE - timedelta(minutes=5)).stages == []       # still due soon: once
    assert escalate(store, rules, now=DUE + timedelta(minutes=1)).stages == [(case_id, "breached")]
    assert escalate(store, rules, now=DUE + timedelta(hours=3)).stages == []
    assert [b["case"]["kind"] for b in leads.bodies] == ["due_soon", "breached"]
    assert leads.bodies[0]["text"].startswith(f"Case #{case_id} is due soon (due 2026-11-20 11:00 UTC)")
    assert "breached its first-response SLA" in leads.bodies[1]["text"]
    assert escalations(store, case_id) == ["due_soon", "breached"]
    kinds = store.case(case_id)["timeline"]["kind"].tolist()
    assert kinds.count("notified") == 2
    assert (store.audit()["action"] == "escalated").sum() == 2


def test_a_case_first_seen_breached_gets_only_the_breach(store, hooks):
    leads = hooks()
    rules = desk_rules(leads.url, hooks().url)
    case_id = open_case(store, rules)
    assert escalate(store, rules, now=DUE + timedelta(hours=2)).stages == [(case_id, "breached")]
    assert [b["case"]["kind"] for b in leads.bodies] == ["breached"]


def test_the_team_escalation_replaces_the_queue_one(store, hooks):
    leads, paris = hooks(), hooks()
    rules = desk_rules(leads.url, paris.url)
    case_id = open_case(store, rules)
    set_team(store, case_id, "paris")
    escalate(store, rules, now=DUE - timedelta(minutes=10))
    assert len(paris.bodies) == 1 and leads.bodies == []
    escalate(store, rules, now=DUE + timedelta(minutes=10))
    assert len(paris.bodies) == 2 and len(leads.bodies) == 1


def test_answered_and_closed_cases_are_not_escalated(store, hooks):
    leads = hooks()
    rules = desk_rules(leads.url, hooks().url)
    answered, closed = open_case(store, rules, 1, "@dan"), open_case(store, rules, 2, "@eve")
    store.replied(answered, "ana", "On it")
    store.resolve(closed, "ana")
    assert escalate(store, rules, now=DUE + timedelta(hours=1)).stages == []
    assert leads.bodies == []


def test_a_failing_webhook_is_retried_on_the_next_run_and_sent_once(store, hooks):
    leads = hooks(statuses=(500, 500, 200))            # both attempts of the first run fail
    rules = desk_rules(leads.url, hooks().url)
    case_id = open_case(store, rules)
    [failed] = escalate(store, rules, now=DUE - timedelta(minutes=10)).sent
    assert failed.attempts == 2 and failed.error.startswith("HTTP 500")
    assert "notified" not in store.case(case_id)["timeline"]["kind"].tolist()
    [retried] = escalate(store, rules, now=DUE - timedelta(minutes=5)).sent
    assert retried.error is None
    assert escalate(store, rules, now=DUE - timedelta(minutes=4)).sent == []
    assert len(leads.bodies) == 3 and store.case(case_id)["timeline"]["kind"].tolist().count("notified") == 1


def test_an_escalation_to_an_e_mail_address_goes_through_smtp(store, smtp_server, monkeypatch):
    port, received = smtp_server
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    rules = parse_rules(f"""
brands:
  - name: Aerolia
    keywords: [aerolia]
queue:
  escalation: {{breached: [lead@example.com]}}
smtp: {{sender: desk@example.com, smtp_host: 127.0.0.1, smtp_port: {port}, starttls: false}}
""")
    case_id = open_case(store, rules)
    result = escalate(store, rules, now=DUE + timedelta(minutes=1))
    assert [s.error for s in result.sent] == [None]
    [message] = received
    assert message["To"] == "lead@example.com" and message["From"] == "desk@example.com"
    assert " ".join(message["Subject"].split()).startswith(f"Case #{case_id} has breached")   # unfolded
    assert "@aerolia where is my bag" in message.get_payload()


def test_ecoute_escalate_prints_the_stages_and_deliveries(tmp_path, hooks, monkeypatch):
    leads = hooks()
    rules = desk_rules(leads.url, hooks().url)
    db = str(tmp_path / "desk.db")
    case_id = open_case(Store(db), rules)         # posted long ago: breached now
    path = tmp_path / "rules.yaml"
    path.write_text(f"""
brands:
  - name: Aerolia
    keywords: [aerolia]
queue:
  escalation: {{breached: [leads]}}
alerts:
  backoff: 0s
  webhooks:
    - {{name: leads, url: "{leads.url}"}}
""", encoding="utf-8")
    result = CliRunner().invoke(main, ["escalate", "--db", db, "--rules", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"case #{case_id}: breached", f"leads: case #{case_id} sent",
                                          "1 case stage(s) escalated, 1 notification(s) sent"]
    again = CliRunner().invoke(main, ["escalate", "--db", db, "--rules", str(path)], catch_exceptions=False)
    assert again.output.splitlines() == ["0 case stage(s) escalated, 0 notification(s) sent"]


def test_ecoute_listen_escalates_each_cycle(tmp_path, hooks):
    leads = hooks()
    rules = desk_rules(leads.url, hooks().url)
    db = str(tmp_path / "desk.db")
    case_id = open_case(Store(db), rules)          # long overdue by now
    feed = tmp_path / "in.jsonl"
    feed.write_text('{"id": "f1", "text": "hello aerolia"}\n', encoding="utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(f"""
brands:
  - name: Aerolia
    keywords: [aerolia]
sources:
  - {{name: drop, type: file, path: "{feed}"}}
queue:
  escalation: {{breached: [leads]}}
alerts:
  backoff: 0s
  webhooks:
    - {{name: leads, url: "{leads.url}"}}
""", encoding="utf-8")
    result = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", str(path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "escalation: 1 case stage(s) escalated, 1 notification(s) sent, 0 failed" in result.output
    assert [b["case"]["id"] for b in leads.bodies] == [case_id]


def test_a_case_an_automation_gave_to_a_team_escalates_to_that_team(store, hooks):
    from pipeline.desk.automations import run_automations

    leads, paris = hooks(), hooks()
    rules = desk_rules(leads.url, paris.url, """
automations:
  - name: Aerolia to Paris
    when: {brand: Aerolia}
    then: {assign_team: paris}
""")
    case_id = open_case(store, rules)
    run_automations(store, rules, ["twitter:1"])
    escalate(store, rules, now=DUE - timedelta(minutes=10))
    assert [b["case"]["id"] for b in paris.bodies] == [case_id] and leads.bodies == []
    assert paris.bodies[0]["case"]["team"] == "paris"

"""The demo tells the story (issue 18): its rules define the brands' own categories, two teams and three
automations, and its history has cases answered and resolved by demo agents, so the Team lead page and
the goals show figures on first start."""
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from pipeline.analytics import goals
from pipeline.cli import main
from pipeline.demo_history import write_history
from pipeline.mention import Labels, Mention
from pipeline.rules import load_rules
from pipeline.store import OPEN_STATUSES, Store
from tests.conftest import ROOT


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("demo") / "demo.db")
    result = run("demo", "--db", db, "--no-dashboard", "--rules", ROOT / "rules.yaml")
    assert result.exit_code == 0, result.output
    return db


def test_the_lead_page_has_first_responses_and_resolved_cases_and_few_open_cases_are_breached(demo_db):
    cases = Store(demo_db).response_times()           # what the Team lead page reads
    answered = cases["first_response_minutes"].dropna()
    assert len(answered) > 100 and (cases["status"] == "resolved").sum() > 100
    assert cases["assignee"].nunique() >= 3           # a per-agent table with several agents
    open_cases = cases[cases["status"].isin(OPEN_STATUSES)]
    assert len(open_cases) >= 3 and open_cases["breached"].sum() < len(open_cases) / 4
    assert 10 < answered.median() < 4 * 60             # minutes, not zero and not days
    assert 0 < cases["breached"].mean() < 0.3          # mostly within the SLA bands, a few late


def test_the_goals_show_figures_on_first_start(demo_db):
    table = goals.status(load_rules(ROOT / "rules.yaml"), since="30d", db=demo_db).set_index("metric")
    assert table.loc["median_first_response", "shown"] != "no data"
    assert 0.5 < table.loc["resolution_rate", "value"] <= 1


def test_the_demo_rules_pass_the_check_and_define_two_teams_and_three_automations():
    result = run("rules", "check", ROOT / "rules.yaml")
    assert result.exit_code == 0, result.output
    rules = load_rules(ROOT / "rules.yaml")
    assert [t.name for t in rules.teams] == ["paris", "care"] and rules.queue.assignment == "round_robin"
    assert len(rules.automations) == 3 and all(a.enabled for a in rules.automations)
    names = {b.name: [c.name for c in b.categories] for b in rules.brands}
    assert {"luggage", "delays", "refunds"} <= set(names["Aerolia"]) and "reactions" in names["Lumelle"]
    hooks = {w.name: w for w in rules.alerts.webhooks}
    notified = {n for a in rules.automations for n in a.then.notify} | set(rules.queue.escalation.breached)
    assert notified <= set(hooks) and all(hooks[n].url_env and not hooks[n].url for n in notified)


def desk(db: str, now: datetime) -> Store:
    """Six cases posted from 10 days to 10 minutes ago, on an always-open 1 h SLA."""
    store = Store(db)
    posts = [Mention("twitter", str(i), f"@aerolia complaint {i}", author=f"user{i}",
                     created_at=now - timedelta(hours=h)) for i, h in enumerate((240, 120, 72, 50, 30, 0.2))]
    store.save_mentions(posts)
    store.save_labels([Labels(m.key, "en", True, ("Aerolia",), "negative", 0.9, True, 0.9, "complaint", True, 60,
                              model="test") for m in posts], sla=3600)
    return store


def test_the_history_is_backdated_through_the_workflow_and_deterministic(backend_db, tmp_path, rules):
    now = datetime.now(timezone.utc)
    store = desk(backend_db, now)
    assigned = int(store.response_times().sort_values("due_at")["id"].iloc[1])
    store.claim(assigned, "eve")                 # as an automatic assignment would when the case was queued
    counts = write_history(store, rules, now)
    cases = store.response_times().sort_values("created_at").reset_index(drop=True)
    eve = cases[cases["id"] == assigned].iloc[0]
    assert (eve["assignee"], eve["status"]) == ("eve", "resolved") and eve["first_response_at"] < eve["claimed_at"]
    assert counts["replied"] >= 4 and counts["resolved"] >= 3
    statuses = list(cases["status"])
    assert statuses[:3] == ["resolved"] * 3 and statuses[-1] == "new"   # the fresh one waits for Claim next
    assert statuses[-2] == "new" and cases["breached"].iloc[-2]          # the newest overdue one too, breached
    naive = now.replace(tzinfo=None)
    assert (cases["created_at"] < naive - timedelta(hours=29)).sum() == 5   # opened when posted, not at load
    assert (cases["first_response_at"].dropna() < naive).all()
    timeline = store.case(int(cases["id"].iloc[0]))["timeline"]
    assert list(timeline["kind"]) == ["mention", "opened", "claim", "reply", "resolve"]
    assert timeline["at"].is_monotonic_increasing and timeline["actor"].iloc[2] in ("amelie", "bruno", "chloe", "david")
    assert "demo_history" in set(store.audit()["action"])
    again = desk(str(tmp_path / "again.db"), now)
    again.claim(assigned, "eve")
    write_history(again, rules, now)
    assert list(again.response_times().sort_values("created_at")["first_response_at"]) == \
        list(cases["first_response_at"])

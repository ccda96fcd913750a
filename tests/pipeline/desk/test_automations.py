"""Automations as a brand's desk sees them: what they match, what they do to a case, once per case, the
notifications they send to a local webhook, and the dry run (`ecoute rules test`).

The store tests run on SQLite and, when ECOUTE_TEST_PG points at a PostgreSQL cluster, on it too.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from pipeline.desk import notify, privacy
from pipeline.desk.automations import CaseState, Facts, act, dry_run, matches, run_automations
from pipeline.cli import main
from pipeline.jobs import process_store
from pipeline.mention import Labels, Mention
from pipeline.rules import Automation, parse_rules
from pipeline.store import Store
from pipeline.desk.templates import templates_for
from tests.conftest import rules_without_desk, write_jsonl
from tests.pipeline.alerts.test_alerts import Hook, dead_url

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
BASE = rules_without_desk()


def with_desk(extra: str):
    """The project's rules plus teams, webhooks and automations (YAML text appended)."""
    return parse_rules(BASE + "\n" + extra)


def desk(url: str, more: str = ""):
    return with_desk(f"""
teams:
  - {{name: paris, members: [ana, bo], languages: [fr]}}
alerts:
  backoff: 0s
  attempts: 2
  webhooks:
    - {{name: care-slack, url: "{url}"}}
automations:
  - name: French luggage to the Paris desk
    when: {{brand: Aerolia, category: delays_cancellation, lang: fr, min_priority: 40}}
    then: {{assign_team: paris, tag: luggage, notify: [care-slack]}}
{more}""")


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


@pytest.fixture
def hook():
    made = Hook()
    yield made
    made.close()


def post(i, author="@dan", thread="t1", text="vol annulé, remboursez-moi", **extra) -> Mention:
    return Mention(source="twitter", source_id=str(i), text=text, author=author, thread_id=thread,
                   created_at=NOW + timedelta(minutes=i), **extra)


def labels(m: Mention, priority=60, lang="fr", category="delays_cancellation", intent="complaint", **extra) -> Labels:
    return Labels(mention_key=m.key, lang=lang, relevant=True, brands=("Aerolia",), sentiment="negative",
                  sentiment_score=0.9, complaint=intent == "complaint", complaint_score=0.9, intent=intent,
                  category=category, severity="disapproval", needs_response=True, priority=priority,
                  reasons=("complaint 0.90",), model="test", **extra)


def classify(store, rules, *pairs):
    """Store mentions with the given labels, queue them, run the automations (as process_store does)."""
    store.save_mentions([m for m, _ in pairs])
    store.save_labels([lab for _, lab in pairs], rules.queue)
    return run_automations(store, rules, [lab.mention_key for _, lab in pairs])


def only_case(store):
    cases = store.queue(statuses=("new", "claimed", "replied", "resolved", "dismissed"))
    assert len(cases) == 1
    return store.case(int(cases.iloc[0]["id"]))


# -- conditions ----------------------------------------------------------------------------------------

FACTS = Facts(brands=("Aerolia",), sources=("twitter", "tw-search"), lang="fr", intent="complaint",
              category="luggage", severity="accusation", sentiment="negative",
              transparency=("undisclosed_promotion",), priority=55, followers=12_000,
              text="Ma valise est perdue depuis 3 jours #Aerolia", title=None, author="@Dan_B")


def automation(**when) -> Automation:
    return Automation(name="a", when=when, then={"tag": "x"})


@pytest.mark.parametrize("when, holds", [
    ({"brand": "Aerolia"}, True), ({"brand": ["Lumelle", "Aerolia"]}, True), ({"brand": "Lumelle"}, False),
    ({"source": "twitter"}, True), ({"source": "tw-search"}, True), ({"source": "reddit"}, False),
    ({"lang": "fr"}, True), ({"lang": ["en", "de"]}, False),
    ({"intent": "complaint"}, True), ({"intent": "question"}, False),
    ({"category": "luggage"}, True), ({"category": "delays"}, False),
    ({"severity": ["accusation", "blame"]}, True), ({"severity": "disapproval"}, False),
    ({"sentiment": "negative"}, True), ({"sentiment": "positive"}, False),
    ({"transparency": "undisclosed_promotion"}, True), ({"transparency": "coordinated_posting"}, False),
    ({"min_priority": 55}, True), ({"min_priority": 56}, False),
    ({"min_followers": 12_000}, True), ({"min_followers": 12_001}, False),
    ({"keywords": ["VALISE"]}, True), ({"keywords": ["#aerolia"]}, True), ({"keywords": ["val"]}, False),
    ({"authors": ["dan_b"]}, True), ({"authors": ["@DAN_B"]}, True), ({"authors": ["dan"]}, False),
    ({"brand": "Aerolia", "lang": "fr", "min_priority": 40}, True), ({"brand": "Aerolia", "lang": "en"}, False),
    ({}, True),
])
def test_each_condition_kind_holds_or_not(when, holds):
    assert matches(automation(**when), FACTS) is holds


def test_keywords_are_words_and_may_be_in_the_title():
    auto = automation(keywords=["bag"])
    assert not matches(auto, Facts(text="my baggage allowance"))
    assert matches(auto, Facts(text="lost!", title="Where is my BAG?"))


def test_priority_points_are_capped_and_tags_are_not_repeated():
    then = Automation(name="a", then={"priority": 30, "tag": ["vip", "luggage"]}).then
    after = act(then, CaseState(priority=85, tags=("luggage",)))
    assert after.priority == 100 and after.tags == ("luggage", "vip")
    lower = Automation(name="b", then={"priority": -50}).then
    assert act(lower, CaseState(priority=20)).priority == 0


# -- on the store: assign, tag, notify once ----------------------------------------------------------

def test_an_automation_assigns_tags_and_notifies_a_local_webhook_exactly_once_per_case(store, hook):
    rules = desk(hook.url)
    first = post(1)
    fired = classify(store, rules, (first, labels(first)))
    assert [f.automation for f in fired] == ["French luggage to the Paris desk"]
    notify.deliver(store, rules)
    case = only_case(store)
    assert case["team"] == "paris" and json.loads(case["tags"]) == ["luggage"]
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["case"]["id"] == case["id"] and body["case"]["name"] == "French luggage to the Paris desk"
    assert body["text"].startswith(f"Case #{case['id']}: automation 'French luggage to the Paris desk'")
    assert "remboursez-moi" in body["text"]
    # rerun on the same mention, then a second mention of Dan in the same thread: still once
    assert run_automations(store, rules, [first.key]) == []
    second = post(2)
    assert classify(store, rules, (second, labels(second, priority=70))) == []
    notify.deliver(store, rules)
    assert len(hook.bodies) == 1
    case = only_case(store)
    timeline = case["timeline"]
    assert timeline["kind"].tolist().count("automation") == 1
    assert timeline["kind"].tolist().count("notified") == 1
    automation_event = json.loads(timeline.set_index("kind").loc["automation", "detail"])
    assert automation_event["actions"] == {"assign_team": "paris", "tag": ["luggage"], "notify": ["care-slack"]}
    reasons = timeline[timeline["key"] == first.key]["reasons"].iloc[0]
    assert "automation: French luggage to the Paris desk" in reasons
    assert (store.audit()["action"] == "automation").sum() == 1


def test_the_queue_shows_the_automation_among_the_reasons(store, hook):
    rules = desk(hook.url)
    m = post(1)
    classify(store, rules, (m, labels(m)))
    assert "automation: French luggage to the Paris desk" in store.queue().iloc[0]["reasons"]


def test_a_case_that_does_not_match_is_left_alone(store, hook):
    rules = desk(hook.url)
    low, english = post(1), post(2, author="@eve")
    fired = classify(store, rules, (low, labels(low, priority=30)), (english, labels(english, lang="en")))
    notify.deliver(store, rules)
    assert fired == [] and hook.bodies == []
    assert set(store.queue()["id"]) and store.audit()["action"].eq("automation").sum() == 0


def test_two_processes_running_the_automations_at_once_fire_them_once(store, hook):
    rules = desk(hook.url)
    m = post(1)
    store.save_mentions([m])
    store.save_labels([labels(m)], rules.queue)
    results, barrier = [], threading.Barrier(2)

    def worker():
        barrier.wait()
        results.append(run_automations(store, rules, [m.key]))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 1]
    notify.deliver(store, rules)
    assert len(hook.bodies) == 1


def test_assign_claims_a_new_case_and_priority_points_count_for_later_automations(store, hook):
    rules = desk(hook.url, """
  - name: VIP first
    when: {min_followers: 10000}
    then: {priority: 25, assign: ana, template: Delay or cancellation}
  - name: Very urgent
    when: {min_priority: 90}
    then: {tag: [urgent, luggage]}
""")
    m = post(1, author_followers=50_000)
    fired = classify(store, rules, (m, labels(m, priority=70)))
    assert [f.automation for f in fired] == ["French luggage to the Paris desk", "VIP first", "Very urgent"]
    assert (fired[1].before.priority, fired[1].after.priority) == (70, 95)
    case = only_case(store)
    assert (case["status"], case["assignee"], case["priority"]) == ("claimed", "ana", 95)
    assert case["claimed_at"] is not None and json.loads(case["tags"]) == ["luggage", "urgent"]
    assert case["template"] == "Delay or cancellation"
    vip = json.loads(case["timeline"].query("kind == 'automation'")["detail"].iloc[1])
    assert vip["priority"] == {"before": 70, "after": 95}


def test_the_suggested_template_is_offered_first_in_the_case_language(store, hook):
    rules = desk(hook.url)
    offered = templates_for(rules, "complaint", "delivery", "fr", suggested="Delay or cancellation")
    assert offered[0].name == "Delay or cancellation" and offered[0].text.startswith("Bonjour")
    assert [t.name for t in offered].count("Delay or cancellation") == 1


def test_dismiss_closes_spam_with_its_reason_and_stops_later_automations(store, hook):
    rules = desk(hook.url, """
  - name: Crypto spam
    when: {keywords: [airdrop, giveaway]}
    then: {dismiss: spam}
""")
    rules = rules.model_copy(update={"automations": [rules.automations[1], rules.automations[0]]})
    m = post(1, text="FREE airdrop for Aerolia flyers, vol annulé? click here")
    fired = classify(store, rules, (m, labels(m)))
    assert [f.automation for f in fired] == ["Crypto spam"]
    case = only_case(store)
    assert (case["status"], case["dismiss_reason"]) == ("dismissed", "spam")
    assert case["resolved_at"] is not None and store.queue().empty
    notify.deliver(store, rules)
    assert hook.bodies == []


def test_a_disabled_automation_never_fires(store, hook):
    rules = desk(hook.url)
    off = rules.automations[0].model_copy(update={"enabled": False})
    rules = rules.model_copy(update={"automations": [off]})
    m = post(1)
    assert classify(store, rules, (m, labels(m))) == []


def test_a_dead_webhook_keeps_the_notification_pending_with_its_error(store, hook):
    rules = desk(dead_url())
    m = post(1)
    classify(store, rules, (m, labels(m)))
    [sent] = notify.deliver(store, rules)
    assert sent.attempts == 2 and "ConnectionError" in sent.error and "secret-token" not in sent.error
    assert "notified" not in only_case(store)["timeline"]["kind"].tolist()
    alive = rules.model_copy(update={"alerts": rules.alerts.model_copy(update={
        "webhooks": [rules.alerts.webhooks[0].model_copy(update={"url": hook.url})]})})
    [again] = notify.deliver(store, alive)
    assert again.error is None and len(hook.bodies) == 1
    assert notify.deliver(store, alive) == []


def test_post_text_cannot_ping_a_channel_or_add_a_link_in_the_webhook_text(store, hook):
    rules = desk(hook.url)
    m = post(1, text="vol annulé <!channel> <https://evil.example|click> `code` & co")
    classify(store, rules, (m, labels(m)))
    notify.deliver(store, rules)
    text = hook.bodies[0]["text"]
    assert "<!channel>" not in text and "<https://" not in text and "&lt;!channel&gt;" in text
    assert text.count("`") == 4                      # the author and the post, each in a code span


def test_a_notification_links_to_the_dashboard_when_its_address_is_known(store, hook, monkeypatch):
    monkeypatch.setenv("ECOUTE_DASHBOARD_URL", "https://desk.example.com/")
    rules = desk(hook.url)
    m = post(1)
    classify(store, rules, (m, labels(m)))
    notify.deliver(store, rules)
    case_id = only_case(store)["id"]
    assert hook.bodies[0]["case"]["link"] == f"https://desk.example.com/case?case={case_id}"


def test_erasing_an_author_removes_the_automation_records_of_their_cases(store, hook):
    rules = desk(hook.url)
    m = post(1)
    classify(store, rules, (m, labels(m)))
    notify.deliver(store, rules)
    removal = privacy.erase(store, "dan", "twitter", actor="dpo")
    assert removal.rows["case_automations"] == 1 and removal.rows["case_notifications"] == 1
    assert store.count("queue_items") == 0


# -- through process_store, with the model ----------------------------------------------------------

def test_process_store_runs_the_automations_and_a_rerun_does_not_repeat_them(store, hook):
    rules = with_desk(f"""
alerts:
  backoff: 0s
  webhooks:
    - {{name: care-slack, url: "{hook.url}"}}
automations:
  - name: Angry about Aerolia
    when: {{brand: Aerolia, intent: complaint}}
    then: {{tag: angry, notify: [care-slack]}}
""")
    first = post(1, text="@aerolia lost my bag, 3 days and no answer. Terrible service, worst airline ever")
    store.save_mentions([first])
    process_store(store, rules)
    process_store(store, rules)
    store.save_mentions([post(2, text="@aerolia still no bag, this is terrible")])
    process_store(store, rules)
    assert len(hook.bodies) == 1
    case = only_case(store)
    assert json.loads(case["tags"]) == ["angry"]
    assert case["timeline"]["kind"].tolist().count("notified") == 1


# -- the dry run -------------------------------------------------------------------------------------

DRY_RULES = """
teams:
  - {name: paris, members: [ana]}
automations:
  - name: Angry Aerolia flyers
    when: {brand: Aerolia, intent: complaint}
    then: {assign_team: paris, priority: 10, tag: angry}
  - name: Praise to marketing
    when: {intent: praise}
    then: {tag: praise}
  - name: Never
    enabled: false
    when: {brand: Aerolia}
    then: {tag: x}
"""


@pytest.fixture
def dry_files(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(BASE + DRY_RULES, encoding="utf-8")
    rows = [{"id": "m1", "source": "twitter", "author": "@dan", "thread_id": "t1",
             "text": "@aerolia lost my bag, 3 days and no answer. Terrible service, worst airline ever"},
            {"id": "m2", "source": "twitter", "author": "@dan", "thread_id": "t1",
             "text": "@aerolia still no answer about my bag, never again"},
            {"id": "m3", "source": "twitter", "author": "@eve", "text": "Beautiful sunset over the lake tonight"}]
    return write_jsonl(tmp_path / "in.jsonl", rows), rules


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_dry_run_shows_what_would_fire_once_per_case_and_stores_nothing(dry_files, tmp_path, monkeypatch):
    source, rules = dry_files
    monkeypatch.chdir(tmp_path)
    result = run("rules", "test", source, "--rules", rules)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("m1 (") and "Angry Aerolia flyers → team paris, priority +10, tag angry" in lines[0]
    assert "; priority " in lines[0]
    before, after = (int(x) for x in lines[0].rsplit("priority ", 1)[1].split(" → "))
    assert after == min(100, before + 10)
    assert lines[1].startswith("m2 (")                                                    # same case: once
    assert lines[1].endswith("no automation fires (fired on this case already: Angry Aerolia flyers)")
    assert lines[2] == lines[2].split(":")[0] + ": no case (needs no response)"
    assert "  Angry Aerolia flyers: 1" in lines and "  Praise to marketing: 0" in lines
    assert not any("Never" in line for line in lines)
    assert not (tmp_path / "ecoute.db").exists()


def test_the_dry_run_as_json_lines(dry_files):
    source, rules = dry_files
    result = run("rules", "test", source, "--rules", rules, "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r.get("id") for r in records[:3]] == ["m1", "m2", "m3"]
    fired = records[0]["automations"][0]
    assert fired["name"] == "Angry Aerolia flyers"
    assert fired["actions"] == {"assign_team": "paris", "priority": 10, "tag": ["angry"]}
    assert fired["priority_after"] == min(100, fired["priority_before"] + 10)
    assert records[1]["automations"] == [] and records[1]["fired_on_case_already"] == ["Angry Aerolia flyers"]
    assert records[2]["queued"] is False and records[2]["automations"] == []
    assert records[-1] == {"summary": {"Angry Aerolia flyers": 1, "Praise to marketing": 0}}


def test_dry_run_reopens_a_dismissed_case_as_the_store_would():
    rules = with_desk("""
automations:
  - name: Spam
    when: {keywords: [airdrop]}
    then: {dismiss: spam}
""")
    spam, later = post(1, text="airdrop now"), post(2, text="really, airdrop")
    trials = dry_run([(spam, labels(spam)), (later, labels(later))], rules)
    assert [len(t.fired) for t in trials] == [1, 0]

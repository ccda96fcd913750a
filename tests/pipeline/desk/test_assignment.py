"""Teams and automatic assignment, as a team lead sees them: who gets which new case, and who never does.

Runs on SQLite and, when ECOUTE_TEST_PG points at a PostgreSQL cluster (.ci/postgres.sh), on it too.
"""
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.desk.assignment import assign_cases, team_of, teams_of_agent
from pipeline.jobs import route_cases
from pipeline.mention import Labels, Mention
from pipeline.rules import parse_rules
from pipeline.store import Store
from pipeline.desk.users import add_user, disable_user, set_availability

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
RULES = """\
brands:
  - name: Aerolia
    keywords: [aerolia]
  - name: Glowé
    keywords: [glowe]
queue:
  assignment: {policy}
{extra}
"""


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def rules_with(policy="round_robin", extra="", teams=""):
    return parse_rules(RULES.format(policy=policy, extra=extra) + teams)


def cases(store, n, lang="en", brand="Aerolia", start=0, priority=50):
    """n new cases, one per author, of `brand` in `lang`; returns their ids."""
    posts = [Mention(source="twitter", source_id=str(start + i), text=f"post {start + i}",
                     author=f"@user{start + i}", created_at=NOW) for i in range(n)]
    store.save_mentions(posts)
    store.save_labels([Labels(mention_key=p.key, lang=lang, relevant=True, brands=(brand,), sentiment="negative",
                              sentiment_score=0.9, complaint=True, complaint_score=0.9, intent="complaint",
                              needs_response=True, priority=priority, reasons=("complaint 0.90",), model="test")
                       for p in posts], 3600)
    keys = {p.key for p in posts}
    frame = store.queue(limit=10_000, statuses=("new", "claimed", "replied", "resolved", "dismissed"))
    return sorted(int(i) for i, k in zip(frame["id"], frame["key"]) if k in keys)


def agents(store, *names, availability="available"):
    for name in names:
        add_user(store, name, "agent", None)
        set_availability(store, name, availability)


def test_round_robin_spreads_30_cases_over_3_agents_10_each_and_skips_an_away_agent(store):
    agents(store, "ana", "bo", "cy")
    agents(store, "dee", availability="away")
    cases(store, 30)
    given = assign_cases(store, rules_with("round_robin"))
    assert Counter(given.values()) == {"ana": 10, "bo": 10, "cy": 10}
    assert "dee" not in given.values()
    first = store.queue(statuses=("claimed",), limit=100)
    assert set(first["assignee"]) == {"ana", "bo", "cy"}
    timeline = store.case(min(given))["timeline"]
    event = timeline[timeline["kind"] == "assigned"].iloc[0]
    assert event["actor"] == "system" and '"policy": "round_robin"' in event["detail"]
    assert (store.audit()["action"] == "assigned").sum() == 30


def test_round_robin_continues_where_it_stopped_after_a_restart(store):
    agents(store, "ana", "bo", "cy")
    cases(store, 2)
    assert sorted(assign_cases(store, rules_with()).values()) == ["ana", "bo"]
    cases(store, 2, start=100)
    again = assign_cases(Store(store.url), rules_with())        # a new process: the rotation comes from the store
    assert [again[i] for i in sorted(again)] == ["cy", "ana"]


def test_least_open_gives_the_next_case_to_whoever_holds_fewest(store):
    agents(store, "ana", "bo")
    held = cases(store, 3)
    for case_id in held:
        store.claim(case_id, "ana")
    cases(store, 4, start=10)
    given = assign_cases(store, rules_with("least_open"))
    assert Counter(given.values()) == {"bo": 3, "ana": 1}                # 3 each, then the tie goes round
    cases(store, 2, start=20)
    assert Counter(assign_cases(store, rules_with("least_open")).values()) == {"ana": 1, "bo": 1}


def test_nobody_holds_more_than_max_open_per_agent_and_the_rest_waits(store):
    agents(store, "ana", "bo")
    cases(store, 7)
    given = assign_cases(store, rules_with("round_robin", extra="  max_open_per_agent: 3"))
    assert Counter(given.values()) == {"ana": 3, "bo": 3}
    assert len(store.queue(statuses=("new",))) == 1
    store.resolve(min(i for i, a in given.items() if a == "ana"), "ana")
    assert list(assign_cases(store, rules_with("round_robin", extra="  max_open_per_agent: 3")).values()) == ["ana"]


def test_signed_out_away_and_disabled_agents_get_nothing_and_cases_wait(store):
    agents(store, "ana", availability="signed_out")
    agents(store, "bo", availability="away")
    agents(store, "cy")
    disable_user(store, "cy")
    cases(store, 3)
    assert assign_cases(store, rules_with()) == {}
    assert len(store.queue(statuses=("new",))) == 3
    set_availability(store, "ana", "available")
    assert set(assign_cases(store, rules_with()).values()) == {"ana"}


def test_manual_assignment_gives_nothing_but_routes_cases_to_their_team(store):
    agents(store, "ana")
    ids = cases(store, 2, lang="fr")
    rules = rules_with("manual", teams="teams:\n  - {name: paris, members: [ana], languages: [fr]}\n")
    assert route_cases(store, rules) == {}
    assert set(store.queue(team="paris")["id"]) == set(ids)
    assert store.queue(team="paris")["status"].eq("new").all()


TEAMS = """\
teams:
  - name: paris
    members: [ana]
    languages: [fr]
    brands: [Aerolia]
  - name: beauty
    members: [bo]
    brands: [Glowé]
  - name: everyone
    members: [cy]
"""


def test_a_case_goes_to_the_first_team_whose_languages_and_brands_match():
    rules = rules_with("manual", teams=TEAMS)
    assert team_of(rules, {"lang": "fr", "brands": ["Aerolia"]}) == "paris"
    assert team_of(rules, {"lang": "en", "brands": ["Aerolia"]}) == "everyone"
    assert team_of(rules, {"lang": "fr", "brands": '["Glowé"]'}) == "beauty"
    assert team_of(rules, {"lang": "fr", "brands": ["Aerolia"], "team": "beauty"}) == "beauty"   # an automation's
    assert team_of(rules_with("manual"), {"lang": "fr", "brands": ["Aerolia"]}) is None
    assert teams_of_agent(rules, "ana") == ["paris"] and teams_of_agent(rules, "zed") == []


def test_team_members_get_their_teams_cases_only(store):
    agents(store, "ana", "bo", "cy")
    french = cases(store, 4, lang="fr")
    beauty = cases(store, 2, brand="Glowé", start=50)
    english = cases(store, 3, start=100)
    given = assign_cases(store, rules_with("round_robin", teams=TEAMS))
    assert {given[i] for i in french} == {"ana"}
    assert {given[i] for i in beauty} == {"bo"}
    assert {given[i] for i in english} == {"cy"}
    assert set(store.queue(team="paris")["id"]) == set(french)


def test_a_teams_own_policy_overrides_the_queues(store):
    agents(store, "ana", "cy")
    cases(store, 2, lang="fr")
    cases(store, 2, start=10)
    teams = TEAMS.replace("    members: [ana]\n", "    members: [ana]\n    assignment: round_robin\n")
    given = assign_cases(store, rules_with("manual", teams=teams))
    assert set(given.values()) == {"ana"} and len(given) == 2           # 'everyone' stays manual


def test_claim_next_takes_the_agents_teams_cases_first_then_any(store):
    rules = rules_with("manual", teams=TEAMS)
    urgent = cases(store, 1, start=0, priority=90)                 # English: team 'everyone'
    french = cases(store, 2, lang="fr", start=10, priority=20)     # team 'paris'
    route_cases(store, rules)
    mine = teams_of_agent(rules, "ana")
    assert store.claim_next("ana", teams=mine) in french
    assert store.claim_next("ana", teams=mine) in french
    assert store.claim_next("ana", teams=mine) == urgent[0]        # her team has none left: any case
    assert store.claim_next("ana", teams=mine) is None


def test_concurrent_runs_never_assign_a_case_twice(store, backend_db):
    agents(store, "ana", "bo", "cy")
    cases(store, 30)
    results: list[dict] = []
    runs = [threading.Thread(target=lambda: results.append(assign_cases(Store(backend_db), rules_with())))
            for _ in range(3)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    given = [case for result in results for case in result]
    assert len(given) == len(set(given)) == 30
    assert (store.audit(limit=500)["action"] == "assigned").sum() == 30


def test_a_snoozed_case_waits_for_its_time(store):
    agents(store, "ana")
    (snoozed, other) = cases(store, 2)
    store.snooze(snoozed, "lead", datetime.now(timezone.utc) + timedelta(hours=2))
    assert list(assign_cases(store, rules_with())) == [other]

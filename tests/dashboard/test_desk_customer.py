"""Issue 18's desk on the dashboard (Streamlit's AppTest): the case page's Customer section, linking a
handle, availability at sign-in, the Away switch and sign-out, the queue's Team filter."""
from datetime import datetime, timedelta, timezone

import yaml
from streamlit.testing.v1 import AppTest

from pipeline.desk import users
from pipeline.mention import Labels, Mention
from pipeline.store import Store
from tests.conftest import ROOT
from tests.dashboard.conftest import HOSTILE


def app(**session) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    for key, value in session.items():
        at.session_state[key] = value
    return at.run()


def case_page(case: int) -> AppTest:
    """The case page, opened from the queue as an agent does."""
    at = app(agent="ana")
    return at.button(key=f"open-{case}").click().run()


def another_post_by_user1(store: Store, text: str) -> None:
    """@user1 (whose first post is the hostile one) writes again, in another thread, on another day."""
    post = Mention("twitter", "900", text, author="@user1", thread_id="other-thread",
                   created_at=datetime.now(timezone.utc) - timedelta(days=3))
    store.save_mentions([post])
    store.save_labels([Labels(post.key, "en", True, ("Aerolia",), "negative", 0.8, True, 0.9, "complaint", True, 70,
                              model="test")], sla=3600)


def test_the_case_page_shows_the_customers_other_cases_and_an_agent_links_a_handle(filled_db):
    store = Store(filled_db)
    another_post_by_user1(store, "second complaint, bag still missing")
    case = int(store.queue().set_index("key").loc["twitter:1", "id"])
    at = case_page(case)
    assert at.title[0].value == f"Case #{case}"
    assert "Customer" in [h.value for h in at.subheader]
    assert {m.label: m.value for m in at.metric}["Complaints this month"] in ("1", "2")  # the month may have turned
    assert {m.label: m.value for m in at.metric}["Open cases"] == "2"
    table = at.dataframe[-2].value                               # the timeline stays the last table
    assert list(table["text"]) == ["second complaint, bag still missing"]
    assert list(table["case status"]) == ["new"]
    assert not any("evil.example" in m.value for m in at.markdown)
    at.text_input(key=f"link-handle-{case}").set_value("reddit:u/user1_b").run()
    at.button(key=f"case-link-{case}").click().run()
    assert not at.exception
    assert "Handles: \u2068reddit:user1_b\u2069, \u2068twitter:user1\u2069" in [t.value for t in at.text]
    entry = store.audit().iloc[0]
    assert (entry["actor"], entry["action"]) == ("ana", "link_handles")


def test_a_bad_handle_is_refused_with_the_shape_it_needs(filled_db):
    case = int(Store(filled_db).queue().iloc[0]["id"])
    at = case_page(case)
    at.text_input(key=f"link-handle-{case}").set_value("user1_b").run()
    at.button(key=f"case-link-{case}").click().run()
    assert any("'source:author'" in t.value for t in at.text)
    assert "link_handles" not in set(Store(filled_db).audit()["action"])


def test_signing_in_makes_an_agent_available_the_away_switch_and_sign_out_take_her_off(filled_db):
    store = Store(filled_db)
    users.add_user(store, "ana", "agent", "correct horse battery")
    at = app()
    at.text_input(key="signin_name").set_value("ana")
    at.text_input(key="signin_password").set_value("correct horse battery")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert users.availability_of(store, "ana") == "available"
    at.sidebar.toggle(key="away-toggle").set_value(True).run()
    assert users.availability_of(store, "ana") == "away"
    at.sidebar.toggle(key="away-toggle").set_value(False).run()
    assert users.availability_of(store, "ana") == "available"
    at.sidebar.button(key="sign-out").click().run()
    assert users.availability_of(store, "ana") == "signed_out"
    assert list(store.audit()["action"]).count("user_availability") == 4


def test_the_queue_shows_each_cases_team_and_filters_by_it(filled_db, tmp_path, monkeypatch, rules_file):
    rules = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    rules["teams"] = [{**team, "members": ["ana"]} if team["name"] == "care" else team for team in rules["teams"]]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("ECOUTE_RULES", str(tmp_path / "rules.yaml"))
    from pipeline.desk.assignment import assign_cases
    from pipeline.rules import load_rules

    store = Store(filled_db)
    assign_cases(store, load_rules(tmp_path / "rules.yaml"))
    at = app(agent="ana")
    assert any(" · team care" in t.value for t in at.text)
    at.selectbox(key="queue_team").set_value("(no team)").run()
    assert not any(" · team care" in t.value for t in at.text)
    at.selectbox(key="queue_team").set_value("care").run()
    assert any(" · team care" in t.value for t in at.text)
    assert HOSTILE in [t.value for t in at.text]

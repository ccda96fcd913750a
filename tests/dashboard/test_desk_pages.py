"""The desk as an agent and a lead use it (Streamlit's AppTest): claim next, the case page with its
timeline and reply box, templates, filters, SLA states, the lead's figures, sign-in and roles."""
from datetime import datetime, timedelta, timezone

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.desk import users
from pipeline.store import Store
from tests.conftest import ROOT
from tests.dashboard.conftest import HOSTILE


def app(**session) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    for key, value in session.items():
        at.session_state[key] = value
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_claim_next_takes_the_top_case_and_opens_it_with_its_timeline(filled_db):
    store = Store(filled_db)
    top = int(store.queue().iloc[0]["id"])
    at = app(agent="ana")
    at.button(key="claim-next").click().run()
    assert not at.exception
    assert at.title[0].value == f"Case #{top}"
    case = store.case(top)
    assert (case["status"], case["assignee"]) == ("claimed", "ana")
    timeline = at.dataframe[-1].value
    assert list(timeline["kind"]) == ["mention", "opened", "claim"]
    assert HOSTILE in list(timeline["text"])                    # the post, as a cell, never markdown
    assert not any("evil.example" in m.value for m in at.markdown)


def test_a_template_reply_marked_by_hand_is_on_the_timeline_and_stops_the_clock(filled_db):
    store = Store(filled_db)
    top = int(store.queue().iloc[0]["id"])
    store.claim(top, "ana")
    at = app(agent="ana")
    at.button(key=f"open-{top}").click().run()
    assert at.title[0].value == f"Case #{top}"
    template = at.selectbox(key=f"template-{top}")
    assert len(template.options) > 1, "the complaint has templates to pick from"
    template.set_value(template.options[1]).run()
    draft = at.text_area(key=f"reply-text-{top}-{template.options[1]}").value
    assert "@user1" in draft and "{" not in draft                # placeholders filled in
    assert any(code.value == draft for code in at.code)         # ready to copy: twitter has no credentials here
    at.button(key=f"mark-replied-{top}").click().run()
    assert not at.exception
    case = store.case(top)
    assert case["status"] == "replied" and case["first_response_at"] is not None
    replies = case["timeline"][case["timeline"]["kind"] == "reply"]
    assert list(replies["text"]) == [draft] and list(replies["actor"]) == ["ana"]
    at.button(key=f"case-resolve-{top}").click().run()
    assert store.case(top)["status"] == "resolved"


def test_queue_filters_by_intent_and_sla_state(filled_db):
    store = Store(filled_db)
    at = app(agent="ana")
    at.selectbox(key="queue_intent").set_value("complaint").run()
    headers = [t for t in texts(at) if t.startswith("#")]
    assert len(headers) == 3 and all("complaint" in h for h in headers)
    at.selectbox(key="queue_intent").set_value("All").run()
    at.selectbox(key="queue_sla").set_value("Breached").run()
    breached = [t for t in texts(at) if t.startswith("#")]
    # filled_db's mentions are hours to days old against a 1 h SLA: every one is breached, and says so
    assert len(breached) == min(len(store.queue()), 25)
    assert any(e.value.startswith("SLA breached") for e in at.error)


def test_the_lead_sees_first_response_times_against_the_goal_per_agent_and_day(filled_db):
    store = Store(filled_db)
    ids = [int(i) for i in store.queue()["id"][:3]]
    for agent, item_id in zip(("ana", "ben", "ana"), ids):
        store.claim(item_id, agent)
        store.replied(item_id, agent, "Sorry about that, we are on it.")
    at = AppTest.from_function(lead_script, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Median first response"] != "–" and "p90 first response" in metrics
    per_agent = at.dataframe[0].value.set_index("agent")
    assert per_agent.loc["ana", "answered"] == 2 and per_agent.loc["ben", "answered"] == 1
    assert any("against a goal of 1 h" in (m.value) for m in [*at.success, *at.error])


def lead_script():
    import dashboard

    dashboard.lead_page()


def test_with_users_defined_an_anonymous_visitor_sees_only_the_sign_in_form(filled_db):
    store = Store(filled_db)
    users.add_user(store, "ana", "agent", "correct horse battery")
    at = app()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not [t for t in texts(at) if "complaint number" in t or HOSTILE in t]
    at.text_input(key="signin_name").set_value("ana")
    at.text_input(key="signin_password").set_value("wrong")
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Sign in"] and at.error
    at.text_input(key="signin_password").set_value("correct horse battery")
    at.button[0].click().run()
    assert at.title[0].value == "Response queue"
    assert "Signed in as ana (agent)" in texts(at)
    assert {"sign_in_failed", "sign_in"} <= set(store.audit()["action"])


def test_a_marketing_user_sees_the_queue_but_cannot_claim_or_resolve(filled_db):
    store = Store(filled_db)
    users.add_user(store, "mia", "marketing", "pw-marketing-1")
    at = app(user="mia")
    assert at.title[0].value == "Response queue"
    labels = {b.label for b in at.button}
    assert "Claim" not in labels and "Resolve" not in labels and "Claim next" not in labels


def test_a_reply_the_platform_refuses_leaves_the_case_claimed_with_the_error_shown(filled_db, monkeypatch):
    """With credentials the desk posts itself; a refusal (here X's 403) is shown and the case stays claimed."""
    from pipeline.desk import replies

    store = Store(filled_db)
    top = int(store.queue().iloc[0]["id"])

    def refused(store_, item_id, agent, text, rules=None):
        error = "403 Forbidden: You are not allowed to create a Tweet with duplicate content."
        store_.reply_failed(item_id, agent, text, error)
        return replies.ReplyOutcome("failed", item_id, "twitter", text, error=error)

    monkeypatch.setattr(replies, "can_post", lambda source: True)
    monkeypatch.setattr(replies, "send_reply", refused)
    at = app(agent="ana")
    at.button(key=f"open-{top}").click().run()
    at.text_area(key=f"reply-text-{top}-(write your own)").set_value("We are sorry, DM us please").run()
    at.button(key=f"send-{top}").click().run()
    assert not at.exception
    case = store.case(top)
    assert (case["status"], case["assignee"]) == ("claimed", "ana")
    assert "403 Forbidden" in case["last_error"]
    assert any("403 Forbidden" in t for t in texts(at))
    assert any("stays claimed" in e.value for e in at.error)


def rules_script():
    import streamlit as st

    import dashboard

    st.session_state["me"], st.session_state["role"] = "root", "admin"
    dashboard.rules_page()


def test_an_admin_changes_the_rules_only_when_they_validate_and_the_change_is_audited(filled_db, tmp_path, monkeypatch):
    rules_file = tmp_path / "rules.yaml"
    original = (ROOT / "rules.yaml").read_text()
    rules_file.write_text(original)
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    at = AppTest.from_function(rules_script, default_timeout=60).run()
    broken = original.replace("  first_response_sla: 1h", "  first_response_sla: soon", 1)
    at.text_area(key="rules_text").set_value(broken).run()
    at.button(key="rules_save").click().run()
    assert rules_file.read_text() == original                      # nothing written
    assert any("first_response_sla" in t.value and ":" in t.value for t in at.text)
    fixed = original.replace("  first_response_sla: 1h", "  first_response_sla: 45m", 1)
    at.text_area(key="rules_text").set_value(fixed).run()
    at.button(key="rules_save").click().run()
    assert rules_file.read_text() == fixed
    audit = Store(filled_db).audit()
    assert list(audit["action"])[:1] == ["rules_change"] and list(audit["actor"])[:1] == ["root"]


def test_each_role_sees_its_pages_and_only_admins_the_rules():
    import dashboard

    pages = {role: [key for key, _, _ in dashboard.pages_for(role)] for role in ("agent", "marketing", "admin")}
    assert pages["admin"] == ["queue", "case", "lead", "trends", "alerts", "sources", "rules"]
    assert "rules" not in pages["agent"] and "rules" not in pages["marketing"]
    assert pages["agent"][0] == "queue" and "trends" in pages["marketing"]


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", None])   # None: Streamlit's default, every interface
def test_streamlit_serving_a_store_without_users_beyond_loopback_shows_only_a_refusal(filled_db, address):
    """`streamlit run dashboard.py --server.address 0.0.0.0` skips the CLI's check: the page refuses itself."""
    from streamlit import config

    config.set_option("server.address", address)
    at = app()
    assert not at.exception
    assert not at.title and not at.sidebar.text_input and not at.button
    assert not [t for t in texts(at) if "complaint number" in t or HOSTILE in t]
    assert any("ecoute users add" in t for t in texts(at))


def test_single_user_mode_on_loopback_says_where_it_is_bound(filled_db):
    at = app()
    assert at.title[0].value == "Response queue"
    assert any("answers only on this computer (127.0.0.1)" in c.value for c in at.sidebar.caption)


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="signin_name").set_value(name)
    at.text_input(key="signin_password").set_value(password)
    return button(at, "Sign in").click().run()


def test_after_repeated_wrong_passwords_the_form_says_how_long_to_wait(filled_db):
    store = Store(filled_db)
    users.add_user(store, "ana", "agent", "correct horse battery")
    at = app()
    for _ in range(users.FREE_FAILURES):
        sign_in(at, "ana", "not the password")
    sign_in(at, "ana", "correct horse battery")
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert any("Too many failed sign-ins" in e.value and "try again in 1 s" in e.value for e in at.error)
    failed = store.audit().query("action == 'sign_in_failed'")
    assert len(failed) == users.FREE_FAILURES + 1 and failed["detail"].str.contains('"client": "session:').all()


def test_a_password_change_signs_the_users_other_sessions_out(filled_db):
    store = Store(filled_db)
    users.add_user(store, "ana", "agent", "correct horse battery")
    at = sign_in(app(), "ana", "correct horse battery")
    assert at.title[0].value == "Response queue"
    users.set_password(store, "ana", "a brand new passphrase", actor="admin")    # e.g. after a stolen laptop
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not [t for t in texts(at) if "complaint number" in t]
    sign_in(at, "ana", "a brand new passphrase")
    assert at.title[0].value == "Response queue"


IMAGE = "![x](https://evil.example/p.png)"


def rendered_as_markdown(at: AppTest) -> list[str]:
    """Every element whose text Streamlit renders as markdown (an image there loads from outside)."""
    return [e.value for kind in (at.title, at.header, at.subheader, at.caption, at.markdown, at.success, at.info,
                                 at.warning, at.error, at.toast) for e in kind]


def case_script():
    import streamlit as st

    import dashboard

    st.session_state["me"], st.session_state["role"] = "ana", "admin"
    dashboard.case_page()


def test_a_case_number_from_the_url_is_never_rendered_as_markdown(filled_db):
    at = AppTest.from_function(case_script, default_timeout=60)
    at.query_params["case"] = "1" + IMAGE
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Case"]
    assert not [m for m in rendered_as_markdown(at) if "evil.example" in m]
    assert any("not a case number" in e.value for e in at.error)
    top = int(Store(filled_db).queue().iloc[0]["id"])
    at.query_params["case"] = str(top)
    at.run()
    assert [t.value for t in at.title][:1] == [f"Case #{top}"]


def test_an_imported_source_name_and_a_bidi_author_stay_plain_text_on_the_desk(filled_db):
    from pipeline.mention import Labels, Mention

    store = Store(filled_db)
    post = Mention(IMAGE, "42", "@aerolia where is my bag", author="mallory\u202e gnp.exe",
                   created_at=datetime.now(timezone.utc) - timedelta(minutes=5))
    store.save_mentions([post])
    store.save_labels([Labels(post.key, "en", True, ("Aerolia",), "negative", 0.9, True, 0.9, "complaint", True, 99,
                              model="test")], sla=3600)
    item = int(store.queue(source=IMAGE).iloc[0]["id"])
    at = app(agent="ana")
    line = next(t for t in texts(at) if t.startswith(IMAGE))
    assert "\u202e" not in line and "\u2068mallory gnp.exe\u2069 · " in line   # the name cannot reverse the line
    at.button(key=f"open-{item}").click().run()
    assert not at.exception and at.title[0].value == f"Case #{item}"
    assert not [m for m in rendered_as_markdown(at) if "evil.example" in m]
    assert any(t.startswith(f"No reply credentials for {IMAGE}") for t in texts(at))
    assert not [t for t in texts(at) if "\u202e" in t]


def page_script():
    import streamlit as st

    import dashboard

    st.session_state["me"], st.session_state["role"] = "ana", "admin"
    getattr(dashboard, st.session_state["page"])()


def test_every_desk_table_has_worded_headings_and_empty_cells_for_missing_values(filled_db):
    from pipeline.store import alerts as store_alerts  # noqa: F401  (the alerts page reads it)
    from tests.dashboard.conftest import assert_tables_read_as_words

    store = Store(filled_db)
    ids = [int(i) for i in store.queue()["id"][:3]]
    store.claim(ids[0], "ana")
    store.replied(ids[0], "ana", "On it.")
    store.claim(ids[1], "ben")                       # claimed, unanswered: no first response (missing)
    for page in ("lead_page", "sources_page", "alerts_page", "case_page"):
        at = AppTest.from_function(page_script, default_timeout=60)
        at.session_state["page"] = page
        at.session_state["case_id"] = ids[0]
        at.run()
        assert not at.exception, page
        if page in ("sources_page", "alerts_page") and not at.dataframe:
            continue                                 # nothing to list on this store
        assert_tables_read_as_words(at)
    lead = AppTest.from_function(page_script, default_timeout=60)
    lead.session_state["page"] = "lead_page"
    lead.run()
    from tests.dashboard.conftest import table_labels

    assert "median first response (min)" in table_labels(lead.dataframe[0])


def test_the_template_an_automation_suggested_is_chosen_first_on_the_case_page(filled_db):
    from pipeline.store import queue_items

    store = Store(filled_db)
    top = int(store.queue().iloc[0]["id"])
    with store.engine.begin() as c:
        c.execute(queue_items.update().where(queue_items.c.id == top).values(template="Delay or cancellation"))
    store.claim(top, "ana")
    at = app(agent="ana")
    at.button(key=f"open-{top}").click().run()
    template = at.selectbox(key=f"template-{top}")
    assert template.options[1] == "Delay or cancellation" and template.value == "Delay or cancellation"
    draft = at.text_area(key=f"reply-text-{top}-Delay or cancellation").value
    assert draft.startswith("Hi ") and "{" not in draft

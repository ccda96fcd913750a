"""Automations on the Rules page (issue 18): listed with a switch each, added or edited with a form,
validated before anything is written, written back keeping the file's comments, audited."""
from streamlit.testing.v1 import AppTest

from pipeline.rules import load_rules
from pipeline.store import Store
from tests.conftest import ROOT
from tests.dashboard.test_desk_pages import rules_script

FIELD = "automation-f-"
COMMENT = "# Teams: who works which cases."


def rules_page(tmp_path, monkeypatch):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text((ROOT / "rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    return rules_file, AppTest.from_function(rules_script, default_timeout=60).run()


def fill(at: AppTest, **fields) -> None:
    for name, value in fields.items():
        at.text_input(key=FIELD + name).set_value(value)


def test_the_form_adds_an_automation_keeping_the_files_comments_and_it_is_audited(filled_db, tmp_path, monkeypatch):
    rules_file, at = rules_page(tmp_path, monkeypatch)
    listed = at.dataframe[0].value
    assert list(listed["name"]) == [a.name for a in load_rules(ROOT / "rules.yaml").automations]
    fill(at, name="German posts to care", lang="de", keywords="kaputt, verloren", assign_team="care",
         notify="care-slack", tag="german")
    at.number_input(key=FIELD + "min_priority").set_value(30)
    at.button(key="FormSubmitter:automation-form-Check and save automation").click().run()
    assert not at.exception
    added = load_rules(rules_file).automations[-1]
    assert (added.name, added.when.lang, added.when.keywords, added.when.min_priority) == (
        "German posts to care", ["de"], ["kaputt", "verloren"], 30)
    assert (added.then.assign_team, added.then.tag, added.then.notify) == ("care", ["german"], ["care-slack"])
    text = rules_file.read_text(encoding="utf-8")
    assert COMMENT in text and "# the care team's Slack channel" in text       # comments kept
    assert text.startswith((ROOT / "rules.yaml").read_text(encoding="utf-8").split("automations:")[0])
    assert "German posts to care" in list(at.dataframe[0].value["name"])      # the table shows it at once
    audit = Store(filled_db).audit()
    assert list(audit["action"])[:1] == ["rules_change"] and '"change": "add"' in audit["detail"].iloc[0]


def test_an_invalid_automation_is_refused_with_its_line_and_nothing_is_written(filled_db, tmp_path, monkeypatch):
    rules_file, at = rules_page(tmp_path, monkeypatch)
    before = rules_file.read_text(encoding="utf-8")
    fill(at, name="Luggage to Lyon", category="luggage", assign_team="lyon")
    at.button(key="FormSubmitter:automation-form-Check and save automation").click().run()
    assert rules_file.read_text(encoding="utf-8") == before
    assert any(e.value.startswith("Not saved") for e in at.error)
    problems = [t.value for t in at.text if "assign_team" in t.value]
    assert problems and f"{rules_file}:" in problems[0] and "unknown team 'lyon'" in problems[0]
    line = int(problems[0].split(f"{rules_file}:")[1].split()[0])
    last = before.splitlines().index("    then: {dismiss: spam}") + 1    # the last automation's last line
    assert line == last + 3                     # the new entry's `then:`: name, when, then
    fill(at, name="Nothing to do", lang="fr", assign_team="")
    at.button(key="FormSubmitter:automation-form-Check and save automation").click().run()
    assert rules_file.read_text(encoding="utf-8") == before
    assert any("needs at least one action" in t.value for t in at.text)


def test_a_switch_disables_an_automation_and_editing_keeps_its_comment(filled_db, tmp_path, monkeypatch):
    rules_file, at = rules_page(tmp_path, monkeypatch)
    spam = next(t for t in at.toggle if t.key.startswith("automation-on-Obvious spam"))
    spam.set_value(False).run()
    assert not at.exception
    assert [a.enabled for a in load_rules(rules_file).automations] == [True, True, False]
    assert list(at.dataframe[0].value["enabled"]) == [True, True, False]
    at.selectbox(key="automation_choice").set_value("Obvious spam").run()
    assert at.text_input(key=FIELD + "keywords").value == "click here, tag 3 friends, 90% off"
    fill(at, keywords="click here, tag 3 friends, 90% off, free followers")
    at.checkbox(key=FIELD + "enabled").check()
    at.button(key="FormSubmitter:automation-form-Check and save automation").click().run()
    rules = load_rules(rules_file)
    assert len(rules.automations) == 3 and rules.automations[2].enabled
    assert rules.automations[2].when.keywords[-1] == "free followers"
    assert "# phrases only spam uses" in rules_file.read_text(encoding="utf-8")

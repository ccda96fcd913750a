"""The Rules page: rules.yaml edited and validated in the browser, and its automations editor."""
from __future__ import annotations

import hashlib
import os

import streamlit as st

from pipeline.rules import RulesError, parse_rules, rules_path
from pipeline import rules_edit
from pipeline.store import DISMISS_REASONS
from ui.common import me, store


def rules_page() -> None:
    """rules.yaml for admins: edit, validated before it is written, every change in the audit log."""
    st.title("Rules")
    path = rules_path(os.environ.get("ECOUTE_RULES"))
    st.text(f"File: {path}")
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as exc:
        st.error("The rules file cannot be read.")
        st.text(str(exc))
        return
    automations_section(path, current)
    st.subheader("The whole file")
    edited = st.text_area("rules.yaml", value=current, height=600, key="rules_text")
    if st.button("Check and save", type="primary", key="rules_save", disabled=edited == current):
        try:
            parse_rules(edited, str(path))
        except RulesError as exc:   # nothing is written: each mistake with its line and field
            st.error("Not saved: the rules have mistakes.")
            st.text("\n".join(exc.problems))
            return
        write_rules(path, edited)
        st.rerun()


def write_rules(path, text: str, detail: dict | None = None) -> None:
    """Write validated rules and audit it ('rules_change'); the editors start again from the new file."""
    path.write_text(text, encoding="utf-8")
    store().record(me(), "rules_change", {"file": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
                                          **(detail or {})})
    st.session_state.pop("rules_text", None)
    forget_automation_form()
    st.session_state["flash"] = ("success", f"Saved {path.name}; listeners pick it up on their next cycle.")


NEW_AUTOMATION = "New automation"
AUTOMATION_FIELD = "automation-f-"   # the form's widget keys: cleared when another automation is picked


def automations_section(path, current: str) -> None:
    """The automations as a table, a switch for each, and a form to add or edit one: each change is
    validated like the whole file before it is written, and the file keeps its comments and layout."""
    st.subheader("Automations")
    st.caption("When a new case matches all of an automation's conditions, Écoute takes its actions. "
               "Edits here are checked before they are written, and the rest of the file stays as it is.")
    try:
        rules_now = parse_rules(current, str(path))
    except RulesError:
        st.info("The file below has mistakes: fix them there first.")
        return
    problems = st.session_state.pop("automation_problems", None)
    if problems:   # from a switch flipped on the last run
        st.error("Not saved: the change has mistakes.")
        st.text("\n".join(problems))
    rows = rules_edit.automation_rows(rules_now)
    if rows.empty:
        st.info("No automations yet: add one below.")
    else:   # names and conditions are written by admins: table cells and plain text only
        st.dataframe(rows, hide_index=True, width="stretch", placeholder="")
        for auto in rules_now.automations:
            left, right = st.columns([5, 1])
            left.text(auto.name)
            right.toggle("Enabled", value=auto.enabled, key=f"automation-on-{auto.name}-{auto.enabled}",
                         on_change=switch_automation, args=(path, auto.name, not auto.enabled))
    automation_form(path, current, rules_now)


def switch_automation(path, name: str, enabled: bool) -> None:
    """A switch flipped: that automation on or off in the file, validated and audited like any edit."""
    text = path.read_text(encoding="utf-8")
    try:
        changed = rules_edit.with_enabled(text, name, enabled)
        parse_rules(changed, str(path))
    except rules_edit.EditError as exc:
        st.session_state["automation_problems"] = [str(exc)]
        return
    except RulesError as exc:
        st.session_state["automation_problems"] = exc.problems
        return
    write_rules(path, changed, {"automation": name, "change": "enable" if enabled else "disable"})


def forget_automation_form() -> None:
    for key in [k for k in st.session_state if str(k).startswith(AUTOMATION_FIELD)]:
        del st.session_state[key]


def automation_form(path, current: str, rules_now) -> None:
    names = [auto.name for auto in rules_now.automations]
    if st.session_state.get("automation_saved") in names:   # the one just saved stays open for more edits
        st.session_state["automation_choice"] = st.session_state.pop("automation_saved")
    choice = st.selectbox("Add or edit", [NEW_AUTOMATION, *names], key="automation_choice",
                          on_change=forget_automation_form)
    auto = None if choice == NEW_AUTOMATION else rules_now.automations[names.index(choice)]
    start = rules_edit.form_values(auto)
    st.text("Lists are comma-separated; an empty field is left out. Known names:\n"
            f"categories: {', '.join(rules_now.category_names())}\n"
            f"teams: {', '.join(t.name for t in rules_now.teams) or 'none'}\n"
            f"webhooks: {', '.join(w.name for w in rules_now.alerts.webhooks) or 'none'}\n"
            f"templates: {', '.join(dict.fromkeys(t.name for t in rules_now.templates)) or 'none'}")
    with st.form("automation-form"):
        values = automation_fields(start)
        submitted = st.form_submit_button("Check and save automation", type="primary")
    if not submitted:
        return
    entry = rules_edit.entry_from_form(values)
    try:
        changed = rules_edit.with_automation(current, entry, replacing=auto.name if auto else None)
        parse_rules(changed, str(path))
    except rules_edit.EditError as exc:
        st.error("Not saved.")
        st.text(str(exc))
        return
    except RulesError as exc:   # nothing is written: each mistake with its line and field
        st.error("Not saved: the automation has mistakes.")
        st.text("\n".join(exc.problems))
        return
    write_rules(path, changed, {"automation": entry["name"], "change": "edit" if auto else "add"})
    st.session_state["automation_saved"] = entry["name"]
    st.rerun()


def automation_fields(start: dict) -> dict:
    """The form's widgets, filled with `start`; their values, keyed like rules_edit.form_values."""
    key = AUTOMATION_FIELD
    values = {"name": st.text_input("Name", value=start["name"], key=f"{key}name", max_chars=120),
              "enabled": st.checkbox("Enabled", value=start["enabled"], key=f"{key}enabled")}
    st.text("When (all of these hold)")
    cols = st.columns(2)
    for i, field in enumerate(rules_edit.WHEN_LISTS):
        values[field] = cols[i % 2].text_input(field.replace("_", " "), value=start[field], key=f"{key}{field}")
    for i, field in enumerate(rules_edit.WHEN_NUMBERS):
        values[field] = cols[i % 2].number_input(field.replace("_", " "), value=start[field], min_value=0, step=1,
                                                 key=f"{key}{field}")
    st.text("Then")
    cols = st.columns(2)
    for i, field in enumerate(("assign_team", "assign", "tag", "notify", "template")):
        values[field] = cols[i % 2].text_input(field.replace("_", " "), value=start[field], key=f"{key}{field}")
    values["priority"] = cols[1].number_input("priority (points added)", value=int(start["priority"]),
                                              min_value=-100, max_value=100, step=1, key=f"{key}priority")
    reasons = ["", *DISMISS_REASONS]
    values["dismiss"] = cols[0].selectbox("dismiss as", reasons, index=reasons.index(start["dismiss"] or ""),
                                          format_func=lambda r: r or "no", key=f"{key}dismiss")
    return values

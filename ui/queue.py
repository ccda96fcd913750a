"""The Queue page: open cases by urgency with filters, bulk actions and Claim next."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from pipeline.store import DISMISS_REASONS, QueueConflict
from pipeline.text import safe_url, shown_text
from pipeline.desk import assignment
from pipeline.desk.untrusted import plain_name
from ui.common import PAGES, act, age, allowed, category_choices, known_agents, me, rules, show_sla, sla_of, store

PAGE_SIZE = 25


# -- the queue -------------------------------------------------------------------------------------

ALL = "All"
SLA_STATES = {"breached": "Breached", "due_soon": "Due soon", "ok": "On time", "none": "No SLA"}


def queue_page() -> None:
    st.title("Response queue")
    current, now = store(), datetime.now(timezone.utc)
    cfg = rules()
    if allowed("claim"):
        if st.button("Claim next", type="primary", key="claim-next",
                     help="Claim the most urgent unclaimed case and open it."):
            take_next(None)
    row1 = st.columns(4)
    brand = row1[0].selectbox("Brand", [ALL] + ([b.name for b in cfg.brands] if cfg else []), key="queue_brand")
    source = row1[1].selectbox("Source", [ALL] + current.sources(), key="queue_source")
    lang = row1[2].selectbox("Language", [ALL, "en", "fr"], key="queue_lang")
    intent = row1[3].selectbox("Intent", [ALL, "complaint", "question", "praise", "other"], key="queue_intent")
    row2 = st.columns(5)
    category = row2[0].selectbox("Category", [ALL] + category_choices(cfg), key="queue_category")
    state = row2[1].selectbox("SLA", [ALL] + list(SLA_STATES.values()), key="queue_sla")
    assignee = row2[2].selectbox("Assignee", [ALL, "Me", "Unassigned"] + known_agents(current), key="queue_assignee")
    team = row2[3].selectbox("Team", [ALL, NO_TEAM] + ([t.name for t in cfg.teams] if cfg else []), key="queue_team")
    mine = row2[4].toggle("Only mine and unclaimed", key="queue_mine")
    pick = lambda value: None if value == ALL else value  # noqa: E731
    who = {ALL: None, "Me": me(), "Unassigned": ""}.get(assignee, assignee)
    items = current.queue(brand=pick(brand), source=pick(source), lang=pick(lang), intent=pick(intent),
                          category=pick(category), assignee=who, team="" if team == NO_TEAM else pick(team))
    if mine:
        items = items[(items["status"] == "new") | (items["assignee"] == me())]
    if len(items):
        states = [sla_of(r.status, r.due_at, r.resolve_due_at, now) for r in items.itertuples()]
        items = items.assign(sla_state=[s for s, _ in states], sla_label=[label for _, label in states])
        if state != ALL:
            items = items[items["sla_state"] == {v: k for k, v in SLA_STATES.items()}[state]]
    a, b, c, d = st.columns(4)
    a.metric("Open cases", len(items))
    b.metric("Unclaimed", int((items["status"] == "new").sum()) if len(items) else 0)
    c.metric("SLA breached", int((items["sla_state"] == "breached").sum()) if len(items) else 0)
    d.metric("Due soon", int((items["sla_state"] == "due_soon").sum()) if len(items) else 0)
    if items.empty:
        st.info("Nothing needs a response. New mentions that do will appear here.")
        return
    if allowed("resolve"):
        bulk_actions(items)
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, key="queue_page") if pages > 1 else 1
    for row in items.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].itertuples(index=False):
        queue_item(row, now)


NO_TEAM = "(no team)"


def queue_item(row, now: datetime) -> None:
    with st.container(border=True):
        head, actions = st.columns([4, 1])
        with head:
            holder = {"claimed": f"claimed by {plain_name(row.assignee)}",
                      "replied": f"replied by {plain_name(row.assignee)}"}.get(
                row.status, "unclaimed")
            kind = row.intent + "".join(f" · {value.replace('_', ' ')}" for value in (row.category, row.severity)
                                        if isinstance(value, str) and value)
            more = f" · {int(row.mentions)} mentions" if getattr(row, "mentions", 1) and int(row.mentions) > 1 else ""
            team = f" · team {row.team}" if isinstance(getattr(row, "team", None), str) and row.team else ""
            st.text(f"#{row.id} · priority {row.priority} · {', '.join(row.brands)} · {kind} · "
                    f"{row.sentiment} · {row.lang} · {holder}{team}{more}")
            st.text(f"{row.source} · {plain_name(row.author) or 'unknown author'}"
                    + (f" ({int(row.author_followers):,} followers)" if pd.notna(row.author_followers) else "")
                    + f" · {age(row.created_at, now)} · {row.sla_label}")
            if row.sla_state in ("breached", "due_soon"):
                show_sla(row.sla_state, row.sla_label)
            if isinstance(row.title, str) and row.title:
                st.text(row.title)
            st.text(shown_text(row.text))
            if row.reasons:
                st.text("Why: " + ", ".join(row.reasons + ([row.sla_label] if row.sla_state != "none" else [])))
            if isinstance(row.last_error, str) and row.last_error:
                st.text(f"Last reply failed: {row.last_error}")
        with actions:
            if st.button("Open case", key=f"open-{row.id}"):
                open_case(int(row.id))
            url = safe_url(row.url)
            if url:
                st.link_button("Open post", url)
            if row.status == "new" and allowed("claim") and st.button("Claim", key=f"claim-{row.id}"):
                act(lambda: store().claim(int(row.id), me()), f"Claimed #{row.id}")
            if allowed("resolve") and st.button("Resolve", key=f"resolve-{row.id}"):
                act(lambda: store().resolve(int(row.id), me()), f"Resolved #{row.id}")


def bulk_actions(items: pd.DataFrame) -> None:
    with st.expander("Bulk actions"):
        chosen = st.multiselect("Cases", [int(i) for i in items["id"]], key="bulk_ids",
                                format_func=lambda i: f"#{i}")
        action = st.selectbox("Action", ["claim", "resolve", "dismiss", "snooze", "reassign"], key="bulk_action")
        options: dict = {}
        if action == "dismiss":
            options["reason"] = st.selectbox("Reason", DISMISS_REASONS, key="bulk_reason")
        elif action == "snooze":
            hours = st.number_input("Hours", min_value=1, max_value=24 * 14, value=4, key="bulk_hours")
            options["until"] = datetime.now(timezone.utc) + timedelta(hours=int(hours))
        elif action == "reassign":
            agents = known_agents(store())
            options["to"] = (st.selectbox("To", agents, key="bulk_to") if agents else
                             st.text_input("To", key="bulk_to").strip()[:80])
        if st.button("Apply", key="bulk_apply", disabled=not chosen):
            outcome = store().bulk(action, chosen, me(), **options)
            failed = {i: why for i, why in outcome.items() if why}
            st.session_state["flash"] = ("warning" if failed else "success",
                                         f"{action}: {len(outcome) - len(failed)} done"
                                         + "".join(f"; #{i}: {why}" for i, why in failed.items()))
            st.rerun()


def open_case(item_id: int) -> None:
    st.session_state["case_id"] = item_id
    st.switch_page(PAGES["case"])


def take_next(brand: str | None) -> None:
    try:
        item_id = store().claim_next(me(), brand=brand, teams=assignment.teams_of_agent(rules(), me()))
    except QueueConflict as exc:
        st.session_state["flash"] = ("warning", str(exc))
        st.rerun()
    if item_id is None:
        st.session_state["flash"] = ("success", "The queue is empty: nothing left to claim.")
        st.rerun()
    st.session_state["flash"] = ("success", f"Claimed #{item_id}")
    open_case(item_id)

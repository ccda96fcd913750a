"""Écoute's dashboard: the response desk for agents, the lead's figures, trends for marketing.

Run with `ecoute dashboard` (or `ecoute demo`). The store and rules come from $ECOUTE_DB and
$ECOUTE_RULES. With no user defined it runs in single-user mode, and only on a loopback address (it
refuses any other); once `ecoute users add` has created one, every page needs sign-in (a password,
or OIDC through st.login when [auth] is in Streamlit's secrets), and the role decides what a person
may do.

Post text is hostile input: it is shown only through st.text, st.code and dataframe cells, never
through markdown or HTML. All SQL lives in pipeline.store; the queue is never cached and claims are
atomic store calls.
"""
from __future__ import annotations

import getpass
import hashlib
import os
from datetime import datetime, timedelta, timezone

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pipeline.desk import assignment, customers, replies, templates, users
from pipeline import rules_edit, store_alerts
from pipeline.rules import Queue, RulesError, parse_rules, rules_path
from pipeline.desk.sla import humanise, sla_state
from ui.trends import trends_page as trends_view
from pipeline.store import DISMISS_REASONS, OPEN_STATUSES, QueueConflict, Store, calendar_of
from pipeline.text import CASE_CHARS, safe_url, shown_text
from pipeline.desk.redaction import redact
from pipeline.desk.untrusted import plain_name
from ui.common import category_choices, current_rules, store

PAGE_SIZE = 25


SINGLE_USER_ROLE = "admin"        # alone on 127.0.0.1, the one user may do everything


# -- who is working: single-user mode, or sign-in with a role --------------------------------------

def oidc_configured() -> bool:
    """An [auth] block in Streamlit's secrets turns on 'Sign in with your identity provider'."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 -- no secrets.toml at all
        return False


def single_user() -> str:
    default = st.session_state.get("agent") or getpass.getuser() or "agent"
    name = st.sidebar.text_input("You are", value=default, key="agent_input", help="Recorded on every action.")
    st.session_state["agent"] = (name or "agent").strip()[:80]
    st.sidebar.caption(f"Single-user mode: no accounts are defined, so the dashboard answers only on this "
                       f"computer ({st.get_option('server.address')}). `ecoute users add` creates the first "
                       "account; from then on everyone signs in.")
    return st.session_state["agent"]


def refuse_beyond_loopback() -> None:
    """Without users there is no sign-in: served on a network address, anyone reaching it would be admin.
    `ecoute dashboard` refuses to start that way; `streamlit run` can, so the page refuses itself."""
    st.text(f"This dashboard has no user accounts, so it only runs on 127.0.0.1 (this computer); it is served "
            f"on {st.get_option('server.address') or 'every interface'}.\n"
            "Run `ecoute users add NAME --role admin` first (then everyone signs in), or serve it on 127.0.0.1.")
    st.stop()


def identity() -> tuple[str, str]:
    """(name, role) of the person at the desk. When users exist and nobody has signed in, this shows
    only the sign-in form and stops the page."""
    current = store()
    if not users.has_users(current):
        if not users.is_loopback(st.get_option("server.address")):
            refuse_beyond_loopback()
        return single_user(), SINGLE_USER_ROLE
    signed = st.session_state.get("user")
    if signed:
        user = users.get_user(current, signed)
        if user is not None and not user.disabled and user.generation == st.session_state.get("user_generation", 0):
            return user.name, user.role
        if user is not None and not user.disabled:   # the password changed since this session signed in
            current.record(signed, "sign_out", {"reason": "password changed"})
        st.session_state.pop("user", None)
    if oidc_configured() and st.user.is_logged_in:
        claimed = st.user.get("email") or st.user.get("preferred_username") or st.user.get("name")
        user = users.get_user(current, str(claimed)) if claimed else None
        if user is not None and not user.disabled:
            st.session_state["user"], st.session_state["user_generation"] = user.name, user.generation
            current.record(user.name, "sign_in", {"via": "oidc"})
            users.set_availability(current, user.name, "available")
            return user.name, user.role
        st.title("Not authorised")
        st.text(f"{claimed} is signed in with the identity provider but is not a user of this desk.\n"
                "An admin adds them with: ecoute users add NAME --role agent|marketing|admin")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    sign_in_form(current)
    st.stop()


def sign_in_form(current: Store) -> None:
    st.title("Sign in")
    st.caption("This desk has user accounts: sign in to see it.")
    with st.form("sign-in"):
        name = st.text_input("User name", key="signin_name")
        password = st.text_input("Password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            user = users.authenticate(current, name, password, client=client_id())   # audited either way
        except users.SignInThrottled as exc:
            st.error(f"Too many failed sign-ins: try again in {exc.seconds} s.")
            return
        if user is None:
            st.error("Unknown user name or wrong password.")
        else:
            st.session_state["user"], st.session_state["user_generation"] = user.name, user.generation
            users.set_availability(current, user.name, "available")   # automatic assignment may give her cases
            st.rerun()
    if oidc_configured():
        st.button("Sign in with your identity provider", on_click=st.login)


def client_id() -> str:
    """Whom failed sign-ins count against besides the name: the connection's IP address (the TCP peer,
    not a header a client could forge), else this browser session (Streamlit gives no address for
    127.0.0.1, so a reverse proxy on this host looks like a local visitor)."""
    address = st.context.ip_address
    if isinstance(address, str) and address:       # AppTest's context answers a stand-in object
        return address
    ctx = get_script_run_ctx()
    return f"session:{ctx.session_id if ctx else '?'}"


def sign_out() -> None:
    name = st.session_state.pop("user", None)
    if name:
        store().record(name, "sign_out")
        users.set_availability(store(), name, "signed_out")
    if oidc_configured() and st.user.is_logged_in:
        st.logout()


def availability_toggle(name: str) -> None:
    """The sidebar's Away switch: automatic assignment gives new cases to available agents only."""
    if not allowed("claim"):
        return
    away = users.availability_of(store(), name) == "away"
    st.sidebar.toggle("Away", value=away, key="away-toggle", on_change=set_away,
                      help="While away, automatic assignment gives you no new cases; Claim next still works.")


def set_away() -> None:
    users.set_availability(store(), me(), "away" if st.session_state.get("away-toggle") else "available")


def me() -> str:
    return st.session_state["me"]


def allowed(action: str) -> bool:
    return users.can(st.session_state.get("role", SINGLE_USER_ROLE), action)


# -- formatting ------------------------------------------------------------------------------------

def age(created: pd.Timestamp | None, now: datetime) -> str:
    if created is None or pd.isna(created):
        return "unknown age"
    minutes = int((now - created.to_pydatetime().replace(tzinfo=timezone.utc)).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // 1440} days ago"


def queue_rules() -> Queue:
    cfg = rules()
    return cfg.queue if cfg else Queue()


def sla_of(status: str, due: pd.Timestamp | None, resolve_due: pd.Timestamp | None, now: datetime) -> tuple[str, str]:
    """('breached' | 'due_soon' | 'ok' | 'none', 'SLA in 12 min'): the first response while unanswered,
    then the resolution target. Working hours and the time zone come from rules.yaml's queue."""
    cfg = queue_rules()
    target = resolve_due if status == "replied" else due
    if target is None or pd.isna(target):
        return "none", "no SLA"
    state, label = sla_state(target.to_pydatetime().replace(tzinfo=timezone.utc), now, calendar_of(cfg), cfg.due_soon)
    return state, (label.replace("SLA", "resolution SLA", 1) if status == "replied" else label)


def show_sla(state: str, label: str) -> None:
    """Breached and about-to-breach cases stand out; the label is ours, never post text."""
    if state == "breached":
        st.error(label)
    elif state == "due_soon":
        st.warning(label)
    else:
        st.text(label)


def minutes(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "–"
    return humanise(timedelta(minutes=float(value)))


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


def known_agents(current: Store) -> list[str]:
    """The users who may work the desk (empty in single-user mode)."""
    return sorted(u.name for u in users.list_users(current) if not u.disabled and users.can(u.role, "claim"))


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


def act(action, done: str) -> None:
    try:
        action()
    except QueueConflict as exc:
        st.session_state["flash"] = ("warning", str(exc))
    else:
        st.session_state["flash"] = ("success", done)
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


# -- one case: its timeline, the reply box, the workflow -----------------------------------------------

def case_number(value: object) -> int | None:
    """The case id from session state or the ?case= URL parameter; None unless it is a whole number."""
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def case_page() -> None:
    wanted = st.session_state.get("case_id") or st.query_params.get("case")
    number = case_number(wanted) if wanted else None
    st.title(f"Case #{number}" if number is not None else "Case")   # never the raw URL parameter: markdown
    if not wanted:
        st.info("Open a case from the queue, or claim the next one there.")
        return
    if number is None:
        st.error("The ?case= in this address is not a case number: open a case from the queue.")
        return
    try:
        case = store().case(number)
    except (QueueConflict, ValueError):
        st.warning("This case does not exist (it may have been erased).")
        return
    item_id, status, holder = int(case["id"]), case["status"], case["assignee"]
    timeline = case["timeline"]
    posts = timeline[timeline["kind"] == "mention"]
    latest = posts.iloc[-1] if len(posts) else None
    now = datetime.now(timezone.utc)
    state, label = sla_of(status, pd.Timestamp(case["due_at"]) if case["due_at"] else None,
                          pd.Timestamp(case["resolve_due_at"]) if case.get("resolve_due_at") else None, now)
    info = (f"{status}" + (f" · {plain_name(holder)}" if holder else "")
            + (f" · team {case['team']}" if case.get("team") else "")
            + (f" · band {case['band']}" if case.get("band") else ""))
    if case.get("dismiss_reason"):
        info += f" · dismissed as {case['dismiss_reason']}"
    st.text(info)
    if status in OPEN_STATUSES:
        show_sla(state, label)
    if case.get("reply_url") and safe_url(case["reply_url"]):
        st.link_button("Our reply on the platform", case["reply_url"])
    if case.get("last_error"):
        st.error("The last reply could not be posted: the case stays claimed until it is answered.")
        st.text(case["last_error"])
    if latest is not None:
        with st.container(border=True):
            brands = ", ".join(latest["brands"]) if isinstance(latest["brands"], list) else ""
            kind = " · ".join(str(v).replace("_", " ") for v in (latest["intent"], latest["category"], latest["severity"])
                              if isinstance(v, str) and v)
            followers = latest.get("author_followers")
            st.text(f"{latest['source']} · {plain_name(latest['actor']) or 'unknown author'}"
                    + (f" ({int(followers):,} followers)" if followers is not None and pd.notna(followers) else "")
                    + f" · {brands} · {kind} · {latest['lang']}")
            st.text(shown_text(latest["text"], CASE_CHARS))
            if isinstance(latest["reasons"], list) and latest["reasons"]:
                st.text("Why: " + ", ".join(latest["reasons"]))
            url = safe_url(latest["url"])
            if url:
                st.link_button("Open post", url)
    if status in OPEN_STATUSES:
        case_actions(item_id, status, holder, latest, case.get("template"))
    if latest is not None and isinstance(latest["actor"], str) and latest["actor"].strip():
        customer_section(item_id, latest["source"], latest["actor"])
    st.subheader("Timeline")
    shown = timeline.assign(detail=timeline["detail"].fillna("") if "detail" in timeline else "")
    st.dataframe(shown[["at", "kind", "actor", "text", "detail"]].rename(columns={"at": "when (UTC)", "actor": "who"}),
                 hide_index=True, width="stretch", placeholder="")


def customer_section(item_id: int, source: str, author: str) -> None:
    """The customer, not only the thread: the author's (and linked handles') other cases and mentions."""
    st.subheader("Customer")
    history = customers.customer_history(store(), source, author, exclude_case=item_id)
    counts = history["counts"]
    cols = st.columns(4)
    cols[0].metric("Complaints this month", counts["complaints_this_month"])
    cols[1].metric("Open cases", counts["open_cases"])
    cols[2].metric("Last sentiment", counts["last_sentiment"] or "unknown")
    cols[3].metric("First seen", f"{counts['first_seen']:%Y-%m-%d}" if counts["first_seen"] else "unknown")
    st.text("Handles: " + ", ".join(plain_name(h) for h in history["handles"]))
    st.dataframe(customer_table(history), hide_index=True, width="stretch", placeholder="")
    if allowed("note"):
        customer_links(item_id, customers.handle_of(source, author), history["handles"])


def customer_table(history: dict) -> pd.DataFrame:
    """The other mentions, each with its case and the case's status; post text stays a cell, never markdown."""
    posts = history["mentions"]
    status = dict(zip(history["cases"]["id"], history["cases"]["status"]))
    return pd.DataFrame({"when (UTC)": posts["at"], "source": posts["source"], "author": posts["author"],
                         "text": posts["text"].map(lambda t: shown_text(t) if isinstance(t, str) else ""),
                         "intent": posts["intent"], "sentiment": posts["sentiment"],
                         "case": posts["case_id"].map(lambda i: f"#{i}" if pd.notna(i) else ""),
                         "case status": posts["case_id"].map(lambda i: status.get(i, "") if pd.notna(i) else "")})


def customer_links(item_id: int, handle: str, linked: list[str]) -> None:
    with st.expander("Link another handle of this person"):
        st.caption("A handle is source:author, such as reddit:dan_b. Linked handles share one history, and "
                   "erasing one erases them all.")
        other = st.text_input("Other handle", key=f"link-handle-{item_id}").strip()[:300]
        if st.button("Link", key=f"case-link-{item_id}", disabled=not other):
            act_on_handles(lambda: customers.link_handles(store(), handle, other, actor=me()),
                           f"Linked {handle} and {other}")
        others = [h for h in linked if h != handle]
        if others:
            gone = st.selectbox("Unlink", others, index=None, key=f"unlink-handle-{item_id}")
            if st.button("Unlink", key=f"case-unlink-{item_id}", disabled=not gone):
                act_on_handles(lambda: customers.unlink_handle(store(), gone, actor=me()), f"Unlinked {gone}")


def act_on_handles(action, done: str) -> None:
    try:
        action()
    except customers.HandleError as exc:
        st.session_state["flash"] = ("warning", str(exc))
    else:
        st.session_state["flash"] = ("success", done)
    st.rerun()


def case_actions(item_id: int, status: str, holder: str | None, latest, suggested: str | None = None) -> None:
    mine = holder == me()
    if status == "new" and allowed("claim"):
        if st.button("Claim", key=f"case-claim-{item_id}", type="primary"):
            act(lambda: store().claim(item_id, me()), f"Claimed #{item_id}")
    elif holder and not mine and status == "claimed":
        st.text(f"{plain_name(holder)} has this case.")
    if latest is not None and allowed("reply") and (mine or status == "new" or st.session_state.get("role") == "admin"):
        reply_box(item_id, latest, suggested)
    cols = st.columns(3)
    if allowed("resolve"):
        if cols[0].button("Resolve", key=f"case-resolve-{item_id}"):
            act(lambda: store().resolve(item_id, me()), f"Resolved #{item_id}")
        if cols[1].button("Resolve and take next", key=f"case-resolve-next-{item_id}"):
            try:
                store().resolve(item_id, me())
            except QueueConflict as exc:
                st.session_state["flash"] = ("warning", str(exc))
                st.rerun()
            take_next(None)
    with st.expander("Dismiss, snooze, reassign, note"):
        if allowed("dismiss"):
            reason = st.selectbox("Dismiss as", DISMISS_REASONS, key=f"dismiss-reason-{item_id}")
            if st.button("Dismiss", key=f"case-dismiss-{item_id}"):
                act(lambda: store().dismiss(item_id, me(), reason), f"Dismissed #{item_id} ({reason})")
        if allowed("resolve"):
            hours = st.number_input("Snooze for hours", min_value=1, max_value=24 * 14, value=4,
                                    key=f"snooze-hours-{item_id}")
            if st.button("Snooze", key=f"case-snooze-{item_id}"):
                until = datetime.now(timezone.utc) + timedelta(hours=int(hours))
                act(lambda: store().snooze(item_id, me(), until), f"Snoozed #{item_id} for {int(hours)} h")
        if allowed("reassign"):
            agents = [name for name in known_agents(store()) if name != holder]
            to = (st.selectbox("Reassign to", agents, index=None, key=f"reassign-to-{item_id}") if agents else
                  st.text_input("Reassign to", key=f"reassign-to-{item_id}").strip()[:80])
            if st.button("Reassign", key=f"case-reassign-{item_id}", disabled=not to):
                act(lambda: store().reassign(item_id, to, me()), f"Reassigned #{item_id} to {plain_name(to)}")
        if allowed("note"):
            text = st.text_area("Internal note (never sent)", key=f"note-{item_id}")
            if st.button("Add note", key=f"case-note-{item_id}", disabled=not text.strip()):
                act(lambda: store().note(item_id, me(), text), f"Note added to #{item_id}")


def reply_box(item_id: int, latest, suggested: str | None = None) -> None:
    st.subheader("Reply")
    cfg = rules()
    brands = latest["brands"] if isinstance(latest["brands"], list) else []
    options = (templates.templates_for(cfg, latest["intent"], latest["category"], latest["lang"], suggested)
               if cfg else [])
    names = ["(write your own)"] + [t.name for t in options]
    # an automation's suggestion (templates_for put it first) is chosen already; the agent can still change it
    chosen_first = 1 if suggested and options and options[0].name == suggested else 0
    choice = st.selectbox("Template", names, index=chosen_first, key=f"template-{item_id}")
    draft = ""
    if choice != names[0]:
        chosen = next(t for t in options if t.name == choice)
        draft = templates.render(chosen.text, author=latest["actor"] or "", brand=brands[0] if brands else "",
                                 case=item_id)
    text = st.text_area("Reply text", value=draft, key=f"reply-text-{item_id}-{choice}", max_chars=5000)
    source = str(latest["source"])
    if replies.can_post(source):
        if st.button(f"Send reply on {source}", key=f"send-{item_id}", type="primary", disabled=not text.strip()):
            try:
                outcome = replies.send_reply(store(), item_id, me(), text, cfg)
            except (QueueConflict, ValueError) as exc:    # closed meanwhile by someone else, or an empty text
                st.session_state["flash"] = ("warning", f"Reply not posted: {exc}")
                st.rerun()
            if outcome.status == "sent":
                st.session_state["flash"] = ("success", f"Replied on #{item_id}"
                                             + (f": {outcome.reply_url}" if outcome.reply_url else ""))
            elif outcome.status == "failed":   # the case stays claimed, the error is on it
                st.session_state["flash"] = ("warning", f"Reply not posted, #{item_id} stays claimed: {outcome.error}")
            else:
                st.session_state["flash"] = ("warning", f"{source} cannot take this reply from the desk: "
                                             "copy it and answer on the platform.")
            st.rerun()
    else:
        # the source name comes from imported rows: plain text, never a markdown caption
        st.text(f"No reply credentials for {source}: copy the text, answer on the platform, then mark it replied.")
        if text.strip():
            st.code(text, language=None, wrap_lines=True)
        url = safe_url(latest["url"])
        if url:
            st.link_button("Open the post to answer", url)
        if st.button("Mark replied", key=f"mark-replied-{item_id}", type="primary", disabled=not text.strip()):
            act(lambda: store().replied(item_id, me(), text), f"Replied on #{item_id}")


# -- the lead's page -------------------------------------------------------------------------------

RESPONSE_LABELS = {"median_first_response_min": "median first response (min)",
                   "p90_first_response_min": "p90 first response (min)"}   # headings in words; the data keeps its names

def lead_page() -> None:
    st.title("Team lead")
    days = st.selectbox("Period", [7, 30, 90], index=0, key="lead_days", format_func=lambda d: f"last {d} days")
    now = datetime.now(timezone.utc)
    frame = store().response_times(since=now - timedelta(days=days))
    goal = next((g for g in (rules().goals if rules() else []) if g.metric == "median_first_response"), None)
    target = goal.target.total_seconds() / 60 if goal is not None and isinstance(goal.target, timedelta) else None
    open_cases = frame[frame["status"].isin(OPEN_STATUSES)]
    answered = frame["first_response_minutes"].dropna()
    median = answered.median() if len(answered) else None
    p90 = answered.quantile(0.9) if len(answered) else None
    cols = st.columns(5)
    cols[0].metric("Open cases", len(open_cases))
    cols[1].metric("Unclaimed", int((open_cases["status"] == "new").sum()))
    cols[2].metric("Open and breached", int(open_cases["breached"].sum()))
    cols[3].metric("Median first response", minutes(median),
                   delta=None if target is None or median is None else f"goal {minutes(target)}",
                   delta_color="off")
    cols[4].metric("p90 first response", minutes(p90))
    if target is not None and median is not None:
        (st.success if median <= target else st.error)(
            f"Median first response {minutes(median)} against a goal of {minutes(target)}: "
            + ("met" if median <= target else "missed"))
    if frame.empty:
        st.info("No cases in this period yet.")
        return
    st.subheader("Per agent")
    worked = frame[frame["assignee"].notna()]
    per_agent = worked.groupby("assignee").agg(
        cases=("id", "count"), answered=("first_response_minutes", "count"),
        resolved=("status", lambda s: int((s == "resolved").sum())),
        median_first_response_min=("first_response_minutes", "median"),
        p90_first_response_min=("first_response_minutes", lambda s: s.quantile(0.9)),
        breached=("breached", "sum")).reset_index().rename(columns={"assignee": "agent"})
    st.dataframe(per_agent.round(1), hide_index=True, width="stretch", column_config=RESPONSE_LABELS, placeholder="")
    st.subheader("Per day")
    daily_frame = frame.assign(day=frame["created_at"].dt.floor("D")).groupby("day").agg(
        opened=("id", "count"), answered=("first_response_minutes", "count"),
        median_first_response_min=("first_response_minutes", "median"),
        p90_first_response_min=("first_response_minutes", lambda s: s.quantile(0.9)),
        breached=("breached", "sum")).reset_index()
    chart_data = daily_frame.melt(id_vars=["day"], value_vars=["median_first_response_min", "p90_first_response_min"],
                                  var_name="measure", value_name="minutes").dropna()
    chart_data["measure"] = chart_data["measure"].map(RESPONSE_LABELS)    # the legend in words too
    layers = alt.Chart(chart_data).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day (UTC)"), y=alt.Y("minutes:Q", title="First response (minutes)"),
        color=alt.Color("measure:N", title=None), tooltip=["day:T", "measure", alt.Tooltip("minutes:Q", format=".1f")])
    if target is not None:
        layers = layers + alt.Chart(pd.DataFrame({"goal": [target]})).mark_rule(strokeDash=[4, 4], color="red").encode(
            y="goal:Q")
    st.altair_chart(layers, width="stretch")
    numbers = {column: 1 for column in daily_frame.columns if column != "day"}
    st.dataframe(daily_frame.sort_values("day", ascending=False).round(numbers), hide_index=True, width="stretch",
                 column_config=RESPONSE_LABELS | {"day": st.column_config.DateColumn("day (UTC)")}, placeholder="")
    st.caption("First response: wall-clock time from the case's first mention being queued to the first reply. "
               "Breached: answered (or still unanswered) after the SLA target of its band.")


def sources_page() -> None:
    st.title("Sources")
    configured = rules().sources if rules() else []
    health = store().health().set_index("source_name")
    newest = store().newest_by_source()
    now = pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None)
    rows = []
    for source in configured:
        row = health.loc[source.name] if source.name in health.index else None
        backoff = row["backoff_until"] if row is not None else None
        latest = newest.get(source.type)
        rows.append({
            "source": source.name, "type": source.type, "every": str(source.interval), "enabled": source.enabled,
            "newest mention": latest,
            "lag behind now": humanise(now.to_pydatetime() - latest) if latest is not None else None,
            "last success": None if row is None else row["last_success_at"],
            "items fetched": 0 if row is None else int(row["items_fetched"]),
            "last error": None if row is None or not row["last_error"] else redact(row["last_error"]),
            "last error at": None if row is None else row["last_error_at"],
            "backing off until": backoff if backoff is not None and pd.notna(backoff) and backoff > now else None,
        })
    if not rows:
        st.info("No sources configured in rules.yaml.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="")
    st.caption("Times are UTC. Lag: how far the newest stored mention of that kind of source is behind now "
               "(a stream that keeps up stays within minutes). `ecoute listen` fills this in; `ecoute sources` "
               "shows the same in a terminal.")


def alerts_page() -> None:
    st.title("Alerts & risks")
    current = store()
    st.subheader("Crisis and spike alerts")
    alerts = current.alerts()
    if alerts.empty:
        st.info("No alerts yet. `ecoute alerts` and every `ecoute listen` cycle look for spikes.")
    else:
        st.dataframe(pd.DataFrame({
            "brand": alerts["brand"], "kind": alerts["kind"].str.replace("_", " "),
            "from (UTC)": alerts["window_start"], "to (UTC)": alerts["window_end"], "reason": alerts["reason"],
            "mentions": alerts["mention_keys"].map(len),
            "webhooks": alerts["deliveries"].map(lambda d: ", ".join(f"{k}: {v}" for k, v in d.items()))}),
            hide_index=True, width="stretch", placeholder="")
    st.subheader("Transparency risks")
    risks = store_alerts.transparency_risks(current)
    if risks.empty:
        st.info("No transparency risks flagged. Classification fills them in (docs/alerts.md, 'Transparency risks').")
        return
    # post text is hostile input: only ever in dataframe cells
    st.dataframe(pd.DataFrame({
        "posted (UTC)": risks["created_at"], "brands": risks["brands"].map(", ".join),
        "risks": risks["transparency"].map(lambda r: ", ".join(k.replace("_", " ") for k in r)),
        "why": risks["reasons"].map("; ".join), "source": risks["source"], "author": risks["author"],
        "text": risks["text"], "link": risks["url"].map(safe_url)}),
        hide_index=True, width="stretch", placeholder="",
        column_config={"link": st.column_config.LinkColumn("link", display_text="open")})


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


def rules():
    try:
        return current_rules()
    except RulesError:
        return None


def pages_for(role: str) -> list[tuple[str, object, str]]:
    """(url path, page function, title) of every page this role may open; "/" opens the first."""
    offered = [("queue", queue_page, "Queue", "view_queue"), ("case", case_page, "Case", "view_queue"),
               ("lead", lead_page, "Team lead", "view_queue"), ("trends", trends_view, "Trends", "view_trends"),
               ("alerts", alerts_page, "Alerts & risks", "view_alerts"),
               ("sources", sources_page, "Sources", "view_alerts"), ("rules", rules_page, "Rules", "change_rules")]
    return [(key, render, title) for key, render, title, needs in offered if users.can(role, needs)]


PAGES: dict[str, "st.Page"] = {}


def main() -> None:
    st.set_page_config(page_title="Écoute", layout="wide")
    name, role = identity()
    st.session_state["me"], st.session_state["role"] = name, role
    if users.has_users(store()):
        st.sidebar.text(f"Signed in as {name} ({role})")
        st.sidebar.button("Sign out", on_click=sign_out, key="sign-out")
        availability_toggle(name)
    flash = st.session_state.pop("flash", None)
    if flash:  # the message can carry an agent's name: shown as plain text, never markdown
        (st.success if flash[0] == "success" else st.warning)("Done" if flash[0] == "success" else "Not done")
        st.text(flash[1])
    PAGES.clear()
    for key, render, title in pages_for(role):
        PAGES[key] = st.Page(render, title=title, url_path=key)
    if not PAGES:
        st.warning("Your role has no page to see: ask an admin.")
        return
    # Streamlit serves the default page at "/" only, never at its url_path: were the queue the default,
    # /queue would be "Page not found". So the default is a hidden page that opens the role's first page.
    first = next(iter(PAGES.values()))
    home = st.Page(lambda: st.switch_page(first), title=first.title, url_path="home", default=True,
                   visibility="hidden")
    st.navigation([home, *PAGES.values()]).run()


if __name__ == "__main__":  # streamlit runs this file as __main__; tests import its pages
    main()

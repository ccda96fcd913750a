"""What every dashboard page shares: who is at the desk (single-user mode or sign-in, and the role's
permissions), one Store per database URL, the current rules, and the small formatters and actions that
several pages use.

The store is a Streamlit resource (one engine and connection pool per URL for all pages and sessions).
The rules are parsed once per version of the file (its path and modification time), not on every read:
a page reads them many times per rerun, and an edit on the Rules page or on disk is seen at once.
"""
from __future__ import annotations

import functools
import getpass
import os
from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pipeline.desk import users
from pipeline.desk.sla import humanise, sla_state
from pipeline.rules import CATEGORIES, Queue, Rules, RulesError, load_rules, rules_path
from pipeline.store import QueueConflict, Store, calendar_of, database_url


@st.cache_resource
def get_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return get_store(database_url(os.environ.get("ECOUTE_DB")))


def current_rules() -> Rules:
    """The rules in $ECOUTE_RULES (else ./rules.yaml); raises RulesError, like load_rules."""
    path = rules_path(os.environ.get("ECOUTE_RULES"))
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = None     # load_rules says what is wrong with the path
    return _rules_at(str(path), version)


@functools.lru_cache(maxsize=8)
def _rules_at(path: str, version: int | None) -> Rules:
    return load_rules(path)


def category_choices(config: Rules | None) -> list[str]:
    """The complaint categories a filter offers: the rules' own (every brand's) and the built-in ones where a
    brand has none; the built-in list when the rules cannot be read."""
    return list(config.category_names()) if config else list(CATEGORIES)


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


def known_agents(current: Store) -> list[str]:
    """The users who may work the desk (empty in single-user mode)."""
    return sorted(u.name for u in users.list_users(current) if not u.disabled and users.can(u.role, "claim"))


def act(action, done: str) -> None:
    try:
        action()
    except QueueConflict as exc:
        st.session_state["flash"] = ("warning", str(exc))
    else:
        st.session_state["flash"] = ("success", done)
    st.rerun()


def rules():
    try:
        return current_rules()
    except RulesError:
        return None


# The pages of this run by url path, filled by dashboard.main: a page opens another with st.switch_page(PAGES[key]).
PAGES: dict[str, "st.Page"] = {}


def show_flash() -> None:
    """The outcome of the last action (set before its st.rerun), shown once at the top of the next run."""
    flash = st.session_state.pop("flash", None)
    if flash:  # the message can carry an agent's name: shown as plain text, never markdown
        (st.success if flash[0] == "success" else st.warning)("Done" if flash[0] == "success" else "Not done")
        st.text(flash[1])

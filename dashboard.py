"""Écoute's dashboard: the response desk for agents, the lead's figures, trends for marketing.

Run with `ecoute dashboard` (or `ecoute demo`). The store and rules come from $ECOUTE_DB and
$ECOUTE_RULES. With no user defined it runs in single-user mode, and only on a loopback address (it
refuses any other); once `ecoute users add` has created one, every page needs sign-in (a password,
or OIDC through st.login when [auth] is in Streamlit's secrets), and the role decides what a person
may do.

Post text is hostile input: it is shown only through st.text, st.code and dataframe cells, never
through markdown or HTML. All SQL lives in pipeline.store; the queue is never cached and claims are
atomic store calls.

This file is the router: identity, the sidebar and the pages a role may open. The pages live in the
`ui` package beside it (ui/queue.py, ui/case.py, …; what they share in ui/common.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:   # `ui` sits beside this file, wherever streamlit runs from
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import streamlit as st

from pipeline.desk import users
from ui.alerts import alerts_page
from ui.case import case_page
from ui.common import PAGES, availability_toggle, identity, show_flash, sign_out, store
from ui.lead import lead_page
from ui.queue import queue_page
from ui.rules import rules_page
from ui.sources import sources_page
from ui.trends import trends_page as trends_view


def pages_for(role: str) -> list[tuple[str, object, str]]:
    """(url path, page function, title) of every page this role may open; "/" opens the first."""
    offered = [("queue", queue_page, "Queue", "view_queue"), ("case", case_page, "Case", "view_queue"),
               ("lead", lead_page, "Team lead", "view_queue"), ("trends", trends_view, "Trends", "view_trends"),
               ("alerts", alerts_page, "Alerts & risks", "view_alerts"),
               ("sources", sources_page, "Sources", "view_alerts"), ("rules", rules_page, "Rules", "change_rules")]
    return [(key, render, title) for key, render, title, needs in offered if users.can(role, needs)]


def main() -> None:
    st.set_page_config(page_title="Écoute", layout="wide")
    name, role = identity()
    st.session_state["me"], st.session_state["role"] = name, role
    if users.has_users(store()):
        st.sidebar.text(f"Signed in as {name} ({role})")
        st.sidebar.button("Sign out", on_click=sign_out, key="sign-out")
        availability_toggle(name)
    show_flash()
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


if __name__ == "__main__":  # streamlit runs this file as __main__; tests import pages_for and the pages
    main()

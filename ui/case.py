"""The Case page: one case's post, its actions, the reply box and the customer's other cases."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from pipeline.store import DISMISS_REASONS, OPEN_STATUSES, QueueConflict
from pipeline.text import CASE_CHARS, safe_url, shown_text
from pipeline.desk import customers, replies, templates
from pipeline.desk.untrusted import plain_name
from ui.common import act, allowed, known_agents, me, rules, show_sla, sla_of, store
from ui.queue import take_next


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

"""Écoute's dashboard: the response queue for agents, trends for marketing.

Run with `ecoute dashboard` (or `ecoute demo`). The store and rules come from $ECOUTE_DB and
$ECOUTE_RULES. Post text is hostile input: it is shown only through st.text and dataframe cells,
never through markdown or HTML. All SQL lives in pipeline.store; the queue is never cached and
claims are atomic store calls.
"""
from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone

import altair as alt
import pandas as pd
import streamlit as st

from pipeline.rules import RulesError, load_rules
from pipeline import store_alerts
from pipeline.store import QueueConflict, Store, database_url

PAGE_SIZE = 25


@st.cache_resource
def get_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return get_store(database_url(os.environ.get("ECOUTE_DB")))


@st.cache_data(ttl=60)
def daily(url: str, source: str | None, lang: str | None) -> pd.DataFrame:
    return get_store(url).daily(source=source, lang=lang)


def agent_name() -> str:
    default = st.session_state.get("agent") or getpass.getuser() or "agent"
    name = st.sidebar.text_input("You are", value=default, key="agent_input", help="Recorded on every action.")
    st.session_state["agent"] = (name or "agent").strip()[:80]
    st.sidebar.caption("Single-user mode: no accounts are defined, the dashboard is bound to 127.0.0.1.")
    return st.session_state["agent"]


def age(created: pd.Timestamp | None, now: datetime) -> str:
    if created is None or pd.isna(created):
        return "unknown age"
    minutes = int((now - created.to_pydatetime().replace(tzinfo=timezone.utc)).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // 1440} days ago"


def sla_label(due: pd.Timestamp | None, now: datetime) -> str:
    if due is None or pd.isna(due):
        return "no SLA"
    left = int((due.to_pydatetime().replace(tzinfo=timezone.utc) - now).total_seconds() // 60)
    return f"SLA breached {-left} min ago" if left < 0 else f"SLA in {left} min"


def safe_url(url: object) -> str | None:
    return url if isinstance(url, str) and url.lower().startswith(("https://", "http://")) else None


def queue_page() -> None:
    st.title("Response queue")
    me = agent_name()
    brands = ["All brands"] + [b.name for b in rules().brands] if rules() else ["All brands"]
    left, right = st.columns([2, 1])
    brand = left.selectbox("Brand", brands, key="queue_brand")
    mine = right.toggle("Only mine and unclaimed", key="queue_mine")
    items = store().queue(brand=None if brand == "All brands" else brand)
    if mine:
        items = items[(items["status"] == "new") | (items["assignee"] == me)]
    now = datetime.now(timezone.utc)
    breached = int((items["due_at"].map(lambda d: sla_label(d, now).startswith("SLA breached"))).sum()) if len(items) else 0
    a, b, c = st.columns(3)
    a.metric("Open items", len(items))
    b.metric("Unclaimed", int((items["status"] == "new").sum()) if len(items) else 0)
    c.metric("SLA breached", breached)
    if items.empty:
        st.info("Nothing needs a response. New mentions that do will appear here.")
        return
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, key="queue_page") if pages > 1 else 1
    for row in items.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE].itertuples(index=False):
        queue_item(row, me, now)


def queue_item(row, me: str, now: datetime) -> None:
    with st.container(border=True):
        head, actions = st.columns([4, 1])
        with head:
            holder = f"claimed by {row.assignee}" if row.status == "claimed" else "unclaimed"
            kind = row.intent + "".join(f" · {value.replace('_', ' ')}" for value in (row.category, row.severity)
                                        if isinstance(value, str) and value)
            st.text(f"#{row.id} · priority {row.priority} · {', '.join(row.brands)} · {kind} · "
                    f"{row.sentiment} · {row.lang} · {holder}")
            st.text(f"{row.source} · {row.author or 'unknown author'}"
                    + (f" ({int(row.author_followers):,} followers)" if pd.notna(row.author_followers) else "")
                    + f" · {age(row.created_at, now)} · {sla_label(row.due_at, now)}")
            if isinstance(row.title, str) and row.title:
                st.text(row.title)
            st.text(row.text)
            if row.reasons:
                st.text("Why: " + ", ".join(row.reasons))
        with actions:
            url = safe_url(row.url)
            if url:
                st.link_button("Open post", url)
            if row.status == "new" and st.button("Claim", key=f"claim-{row.id}"):
                act(lambda: store().claim(int(row.id), me), f"Claimed #{row.id}")
            if st.button("Resolve", key=f"resolve-{row.id}"):
                act(lambda: store().resolve(int(row.id), me), f"Resolved #{row.id}")


def act(action, done: str) -> None:
    try:
        action()
    except QueueConflict as exc:
        st.session_state["flash"] = ("warning", str(exc))
    else:
        st.session_state["flash"] = ("success", done)
    st.rerun()


def trends_page() -> None:
    st.title("Trends")
    current = store()
    left, right = st.columns(2)
    sources = ["All sources"] + current.sources()
    source = left.selectbox("Source", sources, key="trend_source")
    lang = right.selectbox("Language", ["All languages", "en", "fr"], key="trend_lang")
    data = daily(current.url, None if source == "All sources" else source, None if lang == "All languages" else lang)
    if data.empty:
        st.info("No classified mentions for these filters yet.")
        return
    data = data.assign(day=pd.to_datetime(data["day"]))
    st.subheader("Daily volume per brand")
    st.altair_chart(alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("volume:Q", title="Mentions"), color="brand:N",
        tooltip=["brand", "day:T", "volume", "negative", "neutral", "positive"]), use_container_width=True)
    st.subheader("Net sentiment per brand (positive share minus negative share)")
    st.altair_chart(alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("net_sentiment:Q", title="Net sentiment", scale=alt.Scale(domain=[-1, 1])),
        color="brand:N", tooltip=["brand", "day:T", "net_sentiment", "volume"]), use_container_width=True)
    st.subheader("Sentiment mix")
    mix = data.melt(id_vars=["day", "brand"], value_vars=["negative", "neutral", "positive"],
                    var_name="sentiment", value_name="mentions")
    st.altair_chart(alt.Chart(mix).mark_bar().encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("mentions:Q", stack="zero"),
        color=alt.Color("sentiment:N", scale=alt.Scale(domain=["negative", "neutral", "positive"],
                                                       range=["#d62728", "#bbbbbb", "#2ca02c"])),
        row=alt.Row("brand:N")), use_container_width=True)
    st.dataframe(data.sort_values(["day", "brand"], ascending=[False, True]), hide_index=True,
                 use_container_width=True)


def sources_page() -> None:
    st.title("Sources")
    configured = rules().sources if rules() else []
    health = store().health().set_index("source_name")
    now = pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None)
    rows = []
    for source in configured:
        row = health.loc[source.name] if source.name in health.index else None
        backoff = row["backoff_until"] if row is not None else None
        rows.append({
            "source": source.name, "type": source.type, "every": str(source.interval), "enabled": source.enabled,
            "last success": None if row is None else row["last_success_at"],
            "items fetched": 0 if row is None else int(row["items_fetched"]),
            "last error": None if row is None else row["last_error"],
            "last error at": None if row is None else row["last_error_at"],
            "backing off until": backoff if backoff is not None and pd.notna(backoff) and backoff > now else None,
        })
    if not rows:
        st.info("No sources configured in rules.yaml.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    st.caption("Times are UTC. `ecoute listen` fills this in; `ecoute sources` shows the same in a terminal.")


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
            hide_index=True, use_container_width=True)
    st.subheader("Transparency risks")
    risks = store_alerts.transparency_risks(current)
    if risks.empty:
        st.info("No transparency risks flagged. Classification fills them in (README, 'Transparency risks').")
        return
    # post text is hostile input: only ever in dataframe cells
    st.dataframe(pd.DataFrame({
        "posted (UTC)": risks["created_at"], "brands": risks["brands"].map(", ".join),
        "risks": risks["transparency"].map(lambda r: ", ".join(k.replace("_", " ") for k in r)),
        "why": risks["reasons"].map("; ".join), "source": risks["source"], "author": risks["author"],
        "text": risks["text"], "link": risks["url"].map(safe_url)}),
        hide_index=True, use_container_width=True,
        column_config={"link": st.column_config.LinkColumn("link", display_text="open")})


def rules():
    try:
        return load_rules(os.environ.get("ECOUTE_RULES"))
    except RulesError:
        return None


def main() -> None:
    st.set_page_config(page_title="Écoute", layout="wide")
    flash = st.session_state.pop("flash", None)
    if flash:  # the message can carry an agent's name: shown as plain text, never markdown
        (st.success if flash[0] == "success" else st.warning)("Done" if flash[0] == "success" else "Not done")
        st.text(flash[1])
    page = st.navigation([st.Page(queue_page, title="Queue", url_path="queue", default=True),
                          st.Page(trends_page, title="Trends", url_path="trends"),
                          st.Page(sources_page, title="Sources", url_path="sources"),
                          st.Page(alerts_page, title="Alerts & risks", url_path="alerts")])
    page.run()


if __name__ == "__main__":  # streamlit runs this file as __main__; tests import its pages
    main()

"""The Team lead page: the team's load, response times against the goal, and who holds what."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import altair as alt
import pandas as pd
import streamlit as st

from pipeline.store import OPEN_STATUSES
from ui.common import minutes, rules, store


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

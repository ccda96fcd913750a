"""The Alerts & risks page: the alerts raised and where each was delivered."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline.store import alerts as store_alerts
from pipeline.text import safe_url
from ui.common import store


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

"""The Sources page: each listener's last poll, its lag behind now, and its errors."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from pipeline.desk.sla import humanise
from pipeline.desk.redaction import redact
from ui.common import rules, store


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

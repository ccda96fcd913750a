"""The dashboard's Trends page, for marketing and analysts: volume, sentiment, share of voice and
goals per brand, against the previous period, with alert and spike markers and a drill-down from
any day of a chart to the mentions behind it.

Every number comes from `pipeline.analytics` and `pipeline.analytics.goals` (the same functions as the
notebooks and `ecoute report`); this module holds no SQL. Post text is shown only in dataframe
cells and st.text, never through markdown.
"""
from __future__ import annotations

import io
import os
from datetime import datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from pipeline import analytics
from pipeline.analytics import goals
from pipeline.rules import Rules, RulesError, load_rules, rules_path
from pipeline.store import Store
from pipeline.text import safe_url
from ui.common import category_choices, current_rules, get_store, store
from pipeline.desk.untrusted import to_csv

PERIODS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "Last 365 days": 365}
SPLIT_NAMES = {"source": "Source", "lang": "Language", "intent": "Intent", "category": "Complaint category",
               "emotion": "Emotion"}
ALL = "All"
SENTIMENT_COLOURS = alt.Scale(domain=["negative", "neutral", "positive"], range=["#d62728", "#bbbbbb", "#2ca02c"])


def rules() -> Rules | None:
    try:
        return current_rules()
    except RulesError as exc:
        st.error("rules.yaml is invalid, goals and share of voice are off:")
        st.text(exc.problems[0])      # it quotes values from the file: plain text, never markdown
        return None


@st.cache_data(ttl=60, show_spinner=False)
def cached_trends(url: str, days: int, filters: tuple, split: str, competitors: tuple) -> dict:
    brand, source, lang, intent, category = filters
    return analytics.trends(since=f"{days}d", brand=brand, source=source, lang=lang, intent=intent,
                            category=category, split=split, competitors=dict(competitors), db=get_store(url))


@st.cache_data(ttl=60, show_spinner=False)
def cached_alerts(url: str, days: int, brand: str | None) -> pd.DataFrame:
    return analytics.alerts(since=f"{days}d", brand=brand, db=get_store(url))


@st.cache_data(ttl=300, show_spinner=False)
def cached_sources(url: str) -> list[str]:
    return get_store(url).sources()     # a scan of every mention: not on every rerun


def rules_version() -> tuple[str, float]:
    """The rules file and its modification time: a cache key that changes when the file does."""
    path = rules_path(os.environ.get("ECOUTE_RULES"))
    return str(path), path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(ttl=60, show_spinner=False)
def cached_goals(url: str, days: int, version: tuple[str, float]) -> pd.DataFrame:
    return goals.status(load_rules(version[0]), since=f"{days}d", db=get_store(url))


@st.cache_data(ttl=300, show_spinner="Finding topics (embedding the mentions)…")
def cached_topics(url: str, days: int, brand: str | None, version: tuple[str, float]) -> pd.DataFrame:
    from pipeline.analytics.topics import mention_topics

    frame = analytics.mentions(since=f"{days}d", brand=brand, db=get_store(url))
    frame = frame[frame["relevant"].fillna(False).astype(bool)]
    return mention_topics(frame, load_rules(version[0]))[1]


def choose(label: str, options: list[str], key: str, column) -> str | None:
    picked = column.selectbox(label, [ALL, *options], key=key)
    return None if picked == ALL else picked


def filters(current: Store, config: Rules | None) -> tuple[int, tuple, str]:
    top = st.columns(4)
    days = PERIODS[top[0].selectbox("Period", list(PERIODS), index=1, key="tr_period")]
    brand = choose("Brand", [b.name for b in config.brands] if config else [], "tr_brand", top[1])
    source = choose("Source", cached_sources(current.url), "tr_source", top[2])
    lang = choose("Language", ["en", "fr"], "tr_lang", top[3])
    more = st.columns(3)
    intent = choose("Intent", ["complaint", "question", "praise", "other"], "tr_intent", more[0])
    category = choose("Complaint category", category_choices(config), "tr_category", more[1])
    split = more[2].selectbox("Split by", list(SPLIT_NAMES), format_func=SPLIT_NAMES.get, key="tr_split")
    return days, (brand, source, lang, intent, category), split


def trends_page() -> None:
    st.title("Trends")
    current, config = store(), rules()
    days, chosen, split = filters(current, config)
    competitors = tuple((b.name, tuple(b.competitors)) for b in config.brands) if config else ()
    view = cached_trends(current.url, days, chosen, split, competitors)
    if config and config.goals:
        goals_section(current, days, config)
    if view["daily"].empty:
        st.info("No classified mentions for these filters in this period.")
        return
    st.caption(f"{view['start']:%Y-%m-%d} to {view['end']:%Y-%m-%d %H:%M} UTC, compared with the "
               f"{(view['start'] - view['previous_start']).days} days before. Days are UTC.")
    totals_section(view["totals"])
    daily = view["daily"].assign(day=pd.to_datetime(view["daily"]["day"]))
    picked = volume_chart(daily, cached_alerts(current.url, days, chosen[0]), view["previous"])
    sentiment_charts(daily)
    share_of_voice_section(daily, view["competitors"])
    split_section(view["split"], split)
    drill_down(daily, picked, chosen)
    reach_section(current, days, chosen, view["sources"])
    topics_section(current, days, chosen[0], config)
    export_section(days, chosen)


def goals_section(current: Store, days: int, config: Rules) -> None:
    st.subheader("Goals")
    table = cached_goals(current.url, days, rules_version())
    table = table.assign(status=table["met"].map({True: "met", False: "missed"}).fillna("no data"),
                         trend=table["trend"].map(lambda values: [v for v in values if pd.notna(v)]))
    st.dataframe(table[["goal", "brand", "shown", "target_shown", "status", "trend"]], hide_index=True,
                 width="stretch", placeholder="", column_config={
                     "shown": "now", "target_shown": "target",
                     "trend": st.column_config.LineChartColumn("last 8 weeks")})


def totals_section(totals: pd.DataFrame) -> None:
    for _, row in totals.iterrows():
        cells = st.columns(4)
        cells[0].metric(f"{row['brand']}: mentions", int(row["volume"]), _delta(row, "volume", "{:+.0f}"))
        cells[1].metric("negative share", f"{row['negative_share']:.0%}", _delta(row, "negative_share", "points"),
                        delta_color="inverse")
        cells[2].metric("net sentiment", f"{row['net_sentiment']:+.2f}", _delta(row, "net_sentiment", "{:+.2f}"))
        sov = row["share_of_voice"]
        cells[3].metric("share of voice", "n/a" if pd.isna(sov) else f"{sov:.0%}",
                        _delta(row, "share_of_voice", "points"))


def _delta(row: pd.Series, column: str, form: str) -> str | None:
    before = row.get(f"{column}_previous")
    if before is None or pd.isna(before) or pd.isna(row[column]):
        return None
    change = row[column] - before
    return (f"{change * 100:+.1f} pts" if form == "points" else form.format(change)) + " vs previous"


def volume_chart(daily: pd.DataFrame, alerts: pd.DataFrame, previous: pd.DataFrame) -> dict | None:
    st.subheader("Daily volume per brand")
    st.caption("Dashed: the previous period, moved forward to compare · ▲ spike (at least 2.5× the brand's "
               "median day) · red rules: stored alerts. Click a point to see its mentions below.")
    pick = alt.selection_point(name="pick", fields=["day", "brand"], on="click")
    lines = alt.Chart(daily).mark_line(point=alt.OverlayMarkDef(size=60, filled=True)).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("volume:Q", title="Mentions"), color=alt.Color("brand:N"),
        tooltip=["brand", alt.Tooltip("day:T"), "volume", "negative", "positive",
                 alt.Tooltip("share_of_voice:Q", format=".0%")]).add_params(pick)
    layers = [lines]
    if len(previous):
        layers.insert(0, alt.Chart(previous).mark_line(strokeDash=[5, 4], opacity=0.45).encode(
            x="day:T", y="volume:Q", color=alt.Color("brand:N"),
            tooltip=["brand", alt.Tooltip("posted:T", title="previous period, day"), "volume"]))
    spikes = analytics.spikes(daily)
    if len(spikes):
        layers.append(alt.Chart(spikes).mark_point(shape="triangle-up", size=180, filled=True, color="#ff7f0e")
                      .encode(x="day:T", y="volume:Q", tooltip=["brand", alt.Tooltip("day:T"), "volume"]))
    if len(alerts):
        marks = alerts.assign(at=alerts["window_start"])[["at", "kind", "brand", "reason"]]
        layers.append(alt.Chart(marks).mark_rule(color="#d62728", strokeDash=[4, 3]).encode(
            x="at:T", tooltip=["kind", "brand", alt.Tooltip("at:T", format="%Y-%m-%d %H:%M"), "reason"]))
    event = st.altair_chart(alt.layer(*layers), width="stretch", on_select="rerun", key="tr_volume",
                            selection_mode="pick")
    points = (event.selection.get("pick") if event and hasattr(event, "selection") else None) or []
    return points[0] if points else None


def sentiment_charts(daily: pd.DataFrame) -> None:
    left, right = st.columns(2)
    left.subheader("Net sentiment")
    left.altair_chart(alt.Chart(daily).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("net_sentiment:Q", title="(positive − negative) / volume",
                                               scale=alt.Scale(domain=[-1, 1])),
        color="brand:N", tooltip=["brand", alt.Tooltip("day:T"), "net_sentiment", "volume"]),
        width="stretch")
    right.subheader("Negative share")
    right.altair_chart(alt.Chart(daily).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("negative_share:Q", title="negative / volume",
                                               axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color="brand:N", tooltip=["brand", alt.Tooltip("day:T"), alt.Tooltip("negative_share:Q", format=".0%")]),
        width="stretch")


def share_of_voice_section(daily: pd.DataFrame, competitors: pd.DataFrame) -> None:
    st.subheader("Share of voice against competitors")
    sov = daily.dropna(subset=["share_of_voice"])
    if sov.empty:
        st.info("No competitors configured (`brands[].competitors` in rules.yaml), or none named in this period.")
        return
    left, right = st.columns(2)
    left.altair_chart(alt.Chart(sov).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("share_of_voice:Q", title="brand / (brand + competitors)",
                                               axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color="brand:N", tooltip=["brand", alt.Tooltip("day:T"), alt.Tooltip("share_of_voice:Q", format=".0%"),
                                  "volume", "competitor_volume"]), width="stretch")
    voices = pd.concat([daily.groupby("brand", as_index=False)["volume"].sum().rename(columns={"brand": "name"}),
                        competitors.groupby("competitor", as_index=False)["volume"].sum()
                        .rename(columns={"competitor": "name"})], ignore_index=True)
    right.altair_chart(alt.Chart(voices).mark_bar().encode(
        x=alt.X("volume:Q", title="Mentions in the period"), y=alt.Y("name:N", sort="-x", title=None),
        tooltip=["name", "volume"]), width="stretch")


def split_section(split: pd.DataFrame, by: str) -> None:
    st.subheader(f"By {SPLIT_NAMES[by].lower()}")
    if split.empty:
        return
    st.altair_chart(alt.Chart(split).mark_bar().encode(
        x=alt.X("day:T", title="Day"), y=alt.Y("volume:Q", stack="zero", title="Mentions"),
        color=alt.Color(f"{by}:N", title=SPLIT_NAMES[by]), row=alt.Row("brand:N", title=None),
        tooltip=["brand", by, alt.Tooltip("day:T"), "volume"]), width="stretch")


def _picked_day(value) -> pd.Timestamp:
    """A chart selection's day: epoch milliseconds from Vega-Lite, or a date string."""
    return pd.Timestamp(value, unit="ms") if isinstance(value, (int, float)) else pd.Timestamp(value)


def drill_down(daily: pd.DataFrame, picked: dict | None, chosen: tuple) -> None:
    st.subheader("Mentions behind a point")
    days = sorted(daily["day"].dt.date.unique(), reverse=True)
    brands = sorted(daily["brand"].unique())
    # a chart selection stays until the next click: apply it once, so the selectboxes stay usable
    if picked and picked.get("day") is not None and picked.get("brand") in brands:
        point = (_picked_day(picked["day"]).date(), picked["brand"])
        if st.session_state.get("tr_last_pick") != point:
            st.session_state["tr_last_pick"] = point
            st.session_state["tr_day"], st.session_state["tr_drill_brand"] = point
    if st.session_state.get("tr_day") not in days:
        st.session_state["tr_day"] = daily.loc[daily["volume"].idxmax(), "day"].date()
    if st.session_state.get("tr_drill_brand") not in brands:
        st.session_state["tr_drill_brand"] = daily.loc[daily["volume"].idxmax(), "brand"]
    left, right = st.columns(2)
    day = left.selectbox("Day", days, key="tr_day")
    brand = right.selectbox("Brand", brands, key="tr_drill_brand")
    start = datetime.combine(day, datetime.min.time())
    _, source, lang, intent, category = chosen
    rows = analytics.mentions(since=start, until=start + timedelta(days=1), brand=brand, source=source, lang=lang,
                              intent=intent, category=category, db=store(), limit=1000)
    st.text(f"{len(rows)} mentions of {brand} on {day:%Y-%m-%d}")
    shown = rows[["created_at", "source", "author", "author_followers", "sentiment", "emotion", "intent",
                  "category", "priority", "text", "url"]].assign(url=rows["url"].map(safe_url))   # http(s) links only
    st.dataframe(shown, hide_index=True, width="stretch", placeholder="",
                 column_config={"url": st.column_config.LinkColumn("link", display_text="open"),
                                "created_at": st.column_config.DatetimeColumn("posted (UTC)"),
                                "author_followers": st.column_config.NumberColumn("followers")})


def reach_section(current: Store, days: int, chosen: tuple, sources: pd.DataFrame) -> None:
    st.subheader("Sources and authors by reach")
    left, right = st.columns(2)
    left.dataframe(sources, hide_index=True, width="stretch", placeholder="",
                   column_config={"negative_share": st.column_config.NumberColumn("negative share", format="percent")})
    if right.toggle("Top authors", key="tr_authors", help="Read from the mentions of the period (slower on a big store)."):
        brand, source, lang, _, _ = chosen
        right.dataframe(analytics.top_authors(since=f"{days}d", brand=brand, source=source, lang=lang, db=current),
                        hide_index=True, width="stretch", placeholder="")


def topics_section(current: Store, days: int, brand: str | None, config: Rules | None) -> None:
    st.subheader("Topics")
    if config is None or not st.toggle("Find topics in this period", key="tr_topics",
                                       help="Embeds the period's mentions with the encoder: seconds to minutes."):
        st.caption("Topics group the period's mentions by meaning (encoder embeddings, KMeans) and label them by "
                   "their key phrases; growth compares the second half of the period with the first.")
        return
    table = cached_topics(current.url, days, brand, rules_version())
    if table.empty:
        st.info("No mentions to group in this period.")
        return
    fastest = table.sort_values("growth", ascending=False).iloc[0]
    st.text(f"Fastest growing: {fastest['label']} (×{fastest['growth']:.1f}, {fastest['mentions']} mentions)")
    st.dataframe(table[["label", "mentions", "growth", "share", "examples"]], hide_index=True,
                 width="stretch", placeholder="", column_config={
                     "growth": st.column_config.NumberColumn("growth ×", format="%.2f"),
                     "share": st.column_config.NumberColumn(format="percent")})


def export_section(days: int, chosen: tuple) -> None:
    st.subheader("Export")
    brand, source, lang, intent, category = chosen
    if not st.toggle("Prepare the filtered mentions for download", key="tr_export"):
        return
    rows = analytics.mentions(since=f"{days}d", brand=brand, source=source, lang=lang, intent=intent,
                              category=category, db=store())
    flat = rows.assign(**{c: rows[c].map(lambda v: ", ".join(map(str, v))) for c in analytics.JSON_COLUMNS})
    parquet = io.BytesIO()
    flat.to_parquet(parquet, index=False)
    left, right = st.columns(2)
    left.download_button("Download CSV", to_csv(flat), "mentions.csv", "text/csv",   # formulas neutralised
                         key="tr_csv")
    right.download_button("Download Parquet", parquet.getvalue(), "mentions.parquet",
                          "application/vnd.apache.parquet", key="tr_parquet")
    st.caption(f"{len(rows)} mentions with their labels; the same as analytics.mentions(since='{days}d', …).")

"""`ecoute report`: a summary a marketing head reads in a minute, as one self-contained file.

HTML (charts as inline SVG, styles inline, no script, no external resource) or Markdown (charts
as SVG data URIs), chosen by the output's extension. It holds, for the period and against the one
before: per-brand volume, negative share, net sentiment and share of voice; the goals; the top
complaints; transparency risks; alerts. Post text and author names are hostile input: every one is
HTML-escaped (and, in Markdown, its markdown characters too); links are kept only when http(s).
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

import pandas as pd

from pipeline import analytics
from pipeline.analytics import goals, svg
from pipeline.rules import Rules
from pipeline.text import safe_url
from pipeline.desk.untrusted import plain_name

TOP = 10


@dataclass
class Report:
    """Everything a report shows, as data (the HTML and Markdown writers only lay it out)."""
    title: str
    start: datetime
    end: datetime
    previous_start: datetime
    totals: pd.DataFrame
    daily: pd.DataFrame
    goals: pd.DataFrame
    complaints: pd.DataFrame
    categories: pd.DataFrame
    risks: pd.DataFrame
    alerts: pd.DataFrame
    sources: pd.DataFrame


def build(rules: Rules, since: analytics.When = "7d", until: analytics.When = None, db: analytics.Db = None,
          brand: str | None = None) -> Report:
    """Gather the report's figures from the analyst API."""
    competitors = {b.name: list(b.competitors) for b in rules.brands}
    view = analytics.trends(since=since, until=until, brand=brand, competitors=competitors, db=db)
    start, end = view["start"].to_pydatetime(), view["end"].to_pydatetime()
    rows = analytics.mentions(since=start, until=end, brand=brand, db=db)
    rows = rows[rows["relevant"].fillna(False).astype(bool)]
    complaints = rows[rows["intent"] == "complaint"].sort_values(["priority", "author_followers"],
                                                                 ascending=False).head(TOP)
    risky = rows[rows["transparency"].map(len) > 0]
    risks = risky.explode("transparency").rename(columns={"transparency": "risk"})
    names = ", ".join(b.name for b in rules.brands if not brand or b.name == brand)
    return Report(
        title=f"Écoute report: {names}", start=start, end=end, previous_start=view["previous_start"].to_pydatetime(),
        totals=view["totals"], daily=view["daily"],
        goals=goals.status(rules, since=since, until=until, db=db) if rules.goals else pd.DataFrame(),
        complaints=complaints, categories=rows[rows["intent"] == "complaint"]
        .groupby("category", dropna=False).size().rename("mentions").reset_index().sort_values("mentions", ascending=False),
        risks=risks, alerts=analytics.alerts(since=start, until=None, brand=brand, db=db),
        sources=view["sources"])


def _pct(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.0%}"


def _change(now, before, percent: bool = False) -> str:
    if before is None or pd.isna(before) or pd.isna(now):
        return ""
    if percent:
        return f" ({(now - before) * 100:+.0f} pts)"
    return f" ({now - before:+.2f})" if isinstance(now, float) and abs(now) <= 1 else f" ({now - before:+.0f})"


def key_facts(report: Report) -> list[str]:
    """The few sentences read first: each brand's volume and negative share against the last period,
    its busiest day, the alerts and the goals missed. Built from figures and names in rules.yaml only."""
    facts = []
    for _, row in report.totals.iterrows():
        before = row.get("volume_previous")
        change = "" if before is None or pd.isna(before) or not before else f" ({row['volume'] / before - 1:+.0%})"
        facts.append(f"{row['brand']}: {int(row['volume'])} mentions{change}, "
                     f"{_pct(row['negative_share'])} negative{_change(row['negative_share'], row.get('negative_share_previous'), True)}.")
    if len(report.daily):
        top = report.daily.loc[report.daily["volume"].idxmax()]
        facts.append(f"Busiest day: {top['day']:%A %d %B}, {int(top['volume'])} mentions of {top['brand']} "
                     f"({_pct(top['negative_share'])} negative).")
    kinds = report.alerts.groupby("kind").size().to_dict() if len(report.alerts) else {}
    facts.append(f"{len(report.alerts)} alert(s)" + (": " + ", ".join(f"{n} {k}" for k, n in kinds.items()) if kinds else "")
                 + f"; {len(report.risks)} transparency risk(s).")
    if len(report.goals):
        missed = [g for g, met in zip(report.goals["goal"], report.goals["met"]) if met is False]
        facts.append(f"Goals: {int((report.goals['met'] == True).sum())} of {len(report.goals)} met"  # noqa: E712
                     + (f"; missed: {', '.join(missed)}." if missed else "."))
    return facts


def headline_rows(report: Report) -> list[list[str]]:
    """Per brand: mentions, negative share, net sentiment, share of voice, each with its change."""
    out = []
    for _, row in report.totals.iterrows():
        volume_before = row.get("volume_previous")
        out.append([str(row["brand"]),
                    f"{int(row['volume'])}" + ("" if pd.isna(volume_before) else f" (was {int(volume_before)})"),
                    _pct(row["negative_share"]) + _change(row["negative_share"], row.get("negative_share_previous"), True),
                    f"{row['net_sentiment']:+.2f}" + _change(row["net_sentiment"], row.get("net_sentiment_previous")),
                    _pct(row["share_of_voice"]) + _change(row["share_of_voice"], row.get("share_of_voice_previous"), True)])
    return out


def charts(report: Report) -> list[str]:
    """The report's SVG charts: daily volume (with alerts), negative share, share of voice."""
    daily = report.daily
    if daily.empty:
        return []

    def series(column: str) -> dict:
        return {str(brand): [(d.to_pydatetime(), float(v)) for d, v in zip(group["day"], group[column])]
                for brand, group in daily.groupby("brand")}

    markers = [(w.to_pydatetime(), f"{k} alert, {b}") for w, k, b in
               zip(report.alerts.get("window_start", []), report.alerts.get("kind", []), report.alerts.get("brand", []))]
    out = [svg.line_chart(series("volume"), "Mentions per day", markers=markers),
           svg.line_chart(series("negative_share"), "Negative share per day", percent=True, y_range=(0, 1))]
    sov = report.totals.dropna(subset=["share_of_voice"])
    if len(sov):
        out.append(svg.bar_chart([(b, v) for b, v in zip(sov["brand"], sov["share_of_voice"])],
                                 "Share of voice against competitors", percent=True))
    return out


STYLE = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.4}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;"
         "text-align:left;vertical-align:top}th{background:#f5f5f5}.met{color:#2ca02c}.missed{color:#d62728}"
         ".post{min-width:260px;max-width:520px;white-space:pre-wrap}small{color:#666}")


def _table(header: list[str], rows: list[list[str]], raw: set[int] = frozenset()) -> str:
    """An HTML table; every cell escaped except the columns in `raw` (our own SVG or links)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell if i in raw else escape(str(cell))}</td>" for i, cell in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def goal_rows(report: Report) -> list[list[str]]:
    return [[g["goal"], g["brand"], g["shown"], g["target_shown"],
             "met" if g["met"] is True else "missed" if g["met"] is False else "no data"]
            for _, g in report.goals.iterrows()]


def _s(value) -> str:
    """A cell as text; missing values (None, NaN, pd.NA) as ''."""
    return "" if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)) else str(value)


def complaint_rows(report: Report) -> list[list]:
    return [[f"{row['created_at']:%Y-%m-%d %H:%M}", plain_name(row["author"]), _s(row["author_followers"]),
             ", ".join(row["brands"]), _s(row["category"]), _s(row["severity"]), _s(row["priority"]), _s(row["text"]),
             safe_url(_s(row["url"]))] for _, row in report.complaints.iterrows()]


def risk_rows(report: Report) -> list[list[str]]:
    return [[_s(r["risk"]), plain_name(r["author"]), _s(r["text"])] for _, r in report.risks.head(TOP).iterrows()]


def to_html(report: Report) -> str:
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(report.title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{escape(report.title)}</h1>",
             f"<p><small>{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d %H:%M} UTC, compared with "
             f"{report.previous_start:%Y-%m-%d} to {report.start:%Y-%m-%d}. Generated by Écoute.</small></p>",
             "<ul>" + "".join(f"<li>{escape(fact)}</li>" for fact in key_facts(report)) + "</ul>",
             "<h2>Headlines</h2>",
             _table(["brand", "mentions", "negative share", "net sentiment", "share of voice"], headline_rows(report))]
    parts += [f"<div>{chart}</div>" for chart in charts(report)]
    if len(report.goals):
        rows = [r[:4] + [f'<span class="{r[4].replace(" ", "_")}">{escape(r[4])}</span>',
                         svg.sparkline(list(g["trend"]))] for r, (_, g) in zip(goal_rows(report), report.goals.iterrows())]
        parts += ["<h2>Goals</h2>", _table(["goal", "brand", "now", "target", "status", "last 8 weeks"], rows, {4, 5})]
    parts.append("<h2>Top complaints</h2>")
    rows = [r[:7] + [f'<div class="post">{escape(str(r[7]))}</div>',
                     f'<a href="{escape(r[8], quote=True)}" rel="noopener noreferrer">open</a>' if r[8] else ""]
            for r in complaint_rows(report)]
    parts.append(_table(["posted (UTC)", "author", "followers", "brands", "category", "severity", "priority", "text",
                         "link"], rows, {7, 8}) if rows else "<p>No complaints in this period.</p>")
    if len(report.categories):
        parts.append(svg.bar_chart([(str(c) if pd.notna(c) else "unknown", float(n)) for c, n in
                                    zip(report.categories["category"], report.categories["mentions"])],
                                   "Complaints by category"))
    parts.append("<h2>Transparency risks</h2>")
    if len(report.risks):
        counts = report.risks.groupby("risk").size()
        parts.append(_table(["risk", "mentions"], [[k, int(v)] for k, v in counts.items()]))
        parts.append(_table(["risk", "author", "text"], risk_rows(report)))
    else:
        parts.append("<p>None flagged in this period.</p>")
    parts.append("<h2>Alerts</h2>")
    parts.append(_table(["kind", "brand", "from (UTC)", "to", "reason"],
                        [[a["kind"], a["brand"], f"{a['window_start']:%Y-%m-%d %H:%M}", f"{a['window_end']:%H:%M}",
                          a["reason"]] for _, a in report.alerts.iterrows()])
                 if len(report.alerts) else "<p>No alert in this period.</p>")
    if len(report.sources):
        parts += ["<h2>Sources by reach</h2>", _table(["source", "mentions", "reach", "negative share"], [
            [s["source"], int(s["mentions"]), f"{int(s['reach']):,}", _pct(s["negative_share"])]
            for _, s in report.sources.iterrows()])]
    parts.append("</body></html>")
    return "\n".join(parts)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")


def md_escape(text) -> str:
    """Plain text for a Markdown table cell: one line, HTML-escaped, the characters that make links,
    emphasis, code or cells backslashed, and URLs broken by a zero-width space (no autolink)."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape(flat, quote=True)).replace("://", ":&#8203;//").replace(
        "www.", "www&#8203;.")


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: Report) -> str:
    parts = [f"# {md_escape(report.title)}", "",
             f"{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d %H:%M} UTC, compared with "
             f"{report.previous_start:%Y-%m-%d} to {report.start:%Y-%m-%d}.", "",
             *[f"- {md_escape(fact)}" for fact in key_facts(report)], "", "## Headlines", "",
             _md_table(["brand", "mentions", "negative share", "net sentiment", "share of voice"], headline_rows(report)),
             ""]
    for chart in charts(report):
        data = base64.b64encode(chart.encode("utf-8")).decode("ascii")
        parts += [f"![chart](data:image/svg+xml;base64,{data})", ""]
    if len(report.goals):
        parts += ["## Goals", "", _md_table(["goal", "brand", "now", "target", "status"], goal_rows(report)), ""]
    parts += ["## Top complaints", ""]
    rows = [r[:8] + [r[8] or ""] for r in complaint_rows(report)]
    parts += [_md_table(["posted (UTC)", "author", "followers", "brands", "category", "severity", "priority", "text",
                         "link"], rows) if rows else "No complaints in this period.", ""]
    parts += ["## Transparency risks", ""]
    parts += [_md_table(["risk", "author", "text"], risk_rows(report)) if len(report.risks) else "None flagged in this period.", ""]
    parts += ["## Alerts", ""]
    parts += [_md_table(["kind", "brand", "from (UTC)", "reason"],
                        [[a["kind"], a["brand"], f"{a['window_start']:%Y-%m-%d %H:%M}", a["reason"]]
                         for _, a in report.alerts.iterrows()]) if len(report.alerts) else "No alert in this period.", ""]
    return "\n".join(parts)


def render(report: Report, fmt: str) -> str:
    return to_markdown(report) if fmt == "markdown" else to_html(report)


def format_of(path: str | Path) -> str:
    """'markdown' for .md/.markdown, else 'html'."""
    return "markdown" if Path(path).suffix.lower() in (".md", ".markdown") else "html"


def write(path: str | Path, rules: Rules, since: analytics.When = "7d", until: analytics.When = None,
          db: analytics.Db = None, brand: str | None = None) -> Report:
    """Build the report and write it to `path` (HTML, or Markdown by extension)."""
    report = build(rules, since, until, db, brand)
    Path(path).write_text(render(report, format_of(path)), encoding="utf-8")
    return report

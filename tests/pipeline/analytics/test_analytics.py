"""The analyst API on a small store whose every count is known."""
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline import analytics
from pipeline.analytics import goals, topics
from pipeline.mention import Labels, Mention
from pipeline.rules import Rules
from pipeline.store import Store, queue_items

D0, D1, D2 = datetime(2026, 6, 9, 10), datetime(2026, 6, 10, 10), datetime(2026, 6, 11, 10)
COMPETITORS = {"Aerolia": ["SkyNordic", "Volantis"], "Lumelle": ["Dermacorp"]}
#        id  posted          source      lang  brands       competitors    sentiment   intent       category  followers
ROWS = [(1, D1, "twitter", "en", ["Aerolia"], [], "negative", "complaint", "delivery", 100),
        (2, D1 + timedelta(hours=1), "twitter", "en", ["Aerolia"], [], "negative", "complaint", "delivery", 200),
        (3, D1 + timedelta(hours=2), "reddit", "fr", ["Aerolia"], [], "positive", "praise", None, 50),
        (4, D1, "twitter", "en", [], ["SkyNordic"], "neutral", "other", None, 10),
        (5, D1, "twitter", "en", [], ["SkyNordic"], "negative", "other", None, 10),
        (6, D2, "twitter", "en", ["Aerolia"], ["Volantis"], "neutral", "other", None, 1000),
        (7, D2, "mastodon", "en", ["Lumelle"], [], "positive", "praise", None, 5),
        (8, D2, "mastodon", "fr", ["Lumelle"], [], "positive", "praise", None, 5),
        (9, D0, "twitter", "en", ["Aerolia"], [], "negative", "complaint", "delivery", 0)]


def labels_for(row) -> Labels:
    number, _, _, lang, brands, rivals, sentiment, intent, category, _ = row
    return Labels(f"{row[2]}:{number}", lang, bool(brands), tuple(brands), sentiment, 0.9, intent == "complaint",
                  0.9 if intent == "complaint" else 0.1, intent, intent == "complaint", 80 - number,
                  competitors=tuple(rivals), category=category, model="test")


def mention_for(row, text: str | None = None) -> Mention:
    number, posted, source, *_ = row
    return Mention(source, str(number), text or f"post {number}", url=f"https://example.com/{number}",
                   author=f"@user{number}", author_followers=row[-1], created_at=posted.replace(tzinfo=timezone.utc))


@pytest.fixture
def known(backend_db) -> Store:
    """On SQLite, and on PostgreSQL too when ECOUTE_TEST_PG is set."""
    store = Store(backend_db)
    store.save_mentions([mention_for(r) for r in ROWS])
    store.save_labels([labels_for(r) for r in ROWS], sla=3600)
    return store


def test_when_reads_durations_dates_and_datetimes():
    now = datetime(2026, 6, 15, 12)
    assert analytics.when("30d", now=now) == now - timedelta(days=30)
    assert analytics.when("6h", now=now) == now - timedelta(hours=6)
    assert analytics.when("2026-06-10") == datetime(2026, 6, 10)
    assert analytics.when(datetime(2026, 6, 10, 14, tzinfo=timezone(timedelta(hours=2)))) == datetime(2026, 6, 10, 12)
    with pytest.raises(ValueError, match="'30d', '6h'"):
        analytics.when("last tuesday")


def test_daily_counts_volume_sentiment_and_share_of_voice_per_brand_and_day(known):
    frame = analytics.daily(since=D1.date(), until=D2, db=known, competitors=COMPETITORS).set_index(["brand", "day"])
    aerolia = frame.loc[("Aerolia", pd.Timestamp("2026-06-10"))]
    assert (aerolia["volume"], aerolia["negative"], aerolia["positive"]) == (3, 2, 1)
    assert aerolia["negative_share"] == pytest.approx(2 / 3)
    assert aerolia["net_sentiment"] == pytest.approx(-1 / 3)
    assert (aerolia["competitor_volume"], aerolia["share_of_voice"]) == (2, pytest.approx(3 / 5))
    assert frame.loc[("Aerolia", pd.Timestamp("2026-06-11")), "share_of_voice"] == pytest.approx(1 / 2)
    assert frame.loc[("Lumelle", pd.Timestamp("2026-06-11")), "share_of_voice"] == 1.0
    assert len(frame) == 3     # the day before is out, competitor-only mentions are not brand volume


def test_daily_filters_and_types(known):
    french = analytics.daily(since=D0.date(), db=known, lang="fr", competitors=COMPETITORS)
    assert french.groupby("brand")["volume"].sum().to_dict() == {"Aerolia": 1, "Lumelle": 1}
    assert set(analytics.daily(db=known, source="mastodon", competitors={})["brand"]) == {"Lumelle"}
    frame = analytics.daily(db=known, brand="Aerolia", competitors={})
    assert set(frame["brand"]) == {"Aerolia"} and frame["share_of_voice"].isna().all()
    assert str(frame["day"].dtype).startswith("datetime64") and frame["volume"].dtype == "int64"
    assert analytics.daily(since="2d", until="1d", db=known).empty


def test_trends_compares_with_the_previous_period_and_splits(known):
    view = analytics.trends(since=D1.date(), until=D2, split="lang", competitors=COMPETITORS, db=known)
    totals = view["totals"].set_index("brand")
    assert totals.loc["Aerolia", "volume"] == 4 and totals.loc["Aerolia", "volume_previous"] == 1
    assert totals.loc["Aerolia", "volume_change"] == pytest.approx(3.0)
    assert totals.loc["Aerolia", "share_of_voice"] == pytest.approx(4 / 7)
    assert pd.isna(totals.loc["Lumelle", "volume_previous"])
    split = view["split"].groupby(["brand", "lang"])["volume"].sum().to_dict()
    assert split == {("Aerolia", "en"): 3, ("Aerolia", "fr"): 1, ("Lumelle", "en"): 1, ("Lumelle", "fr"): 1}
    assert view["competitors"].groupby("competitor")["volume"].sum().to_dict() == {"SkyNordic": 2, "Volantis": 1}
    assert view["sources"].iloc[0]["source"] == "twitter"     # the largest reach
    [previous] = view["previous"].to_dict("records")        # moved forward by the period's 2 days
    assert (previous["brand"], previous["volume"], previous["posted"], previous["day"]) == \
        ("Aerolia", 1, pd.Timestamp("2026-06-09"), pd.Timestamp("2026-06-11"))
    with pytest.raises(ValueError, match="split must be one of"):
        analytics.trends(split="colour", db=known)


def test_the_daily_counts_follow_new_labels_deletions_and_purges(known):
    assert analytics.refresh(known) in (-1, 0)
    assert analytics.refresh(known) == 0                      # nothing changed: nothing recounted

    def aerolia_on_d2():
        frame = analytics.daily(since=D1.date(), until=D2, db=known, brand="Aerolia", competitors={})
        return int(frame.set_index("day").loc[pd.Timestamp("2026-06-11"), "volume"])

    assert aerolia_on_d2() == 1
    extra = (10, D2 + timedelta(hours=1), "twitter", "en", ["Aerolia"], [], "negative", "other", None, 3)
    known.save_mentions([mention_for(extra)])
    known.save_labels([labels_for(extra)], sla=3600)
    assert aerolia_on_d2() == 2
    known.mark_deleted("twitter:10", actor="test")
    assert aerolia_on_d2() == 1
    known.mark_deleted("twitter:6", actor="test", purge=True)
    assert analytics.daily(since=D1.date(), until=D2, db=known, brand="Aerolia", competitors={})["day"].max() \
        == pd.Timestamp("2026-06-10")


def test_mentions_has_one_typed_row_per_stored_mention_with_its_labels(known):
    known.save_mentions([Mention("rss", "u1", "not classified yet", created_at=datetime(2026, 6, 11, tzinfo=timezone.utc))])
    frame = analytics.mentions(db=known)
    assert len(frame) == len(ROWS) + 1 and frame["key"].is_unique
    assert list(frame["created_at"]) == sorted(frame["created_at"])
    row = frame.set_index("key").loc["twitter:6"]
    assert row["brands"] == ("Aerolia",) and row["competitors"] == ("Volantis",) and row["sentiment"] == "neutral"
    assert pd.isna(frame.set_index("key").loc["rss:u1", "sentiment"])
    assert frame["author_followers"].dtype == "Int64" and frame["relevant"].dtype == "boolean"
    assert str(frame["created_at"].dtype).startswith("datetime64") and frame["text"].dtype == "string"
    assert "raw" not in frame and "raw" in analytics.mentions(db=known, raw=True)


def test_a_brand_filter_matches_the_name_exactly_never_as_a_pattern(known):
    assert len(analytics.mentions(brand="Aerolia", db=known)) > 0
    for pattern in ("A_rolia", "Aero%", "%", "_"):
        assert analytics.mentions(brand=pattern, db=known).empty, pattern
        assert analytics.cases(db=known, brand=pattern).empty, pattern
        assert analytics.daily(db=known, brand=pattern, competitors={}).empty, pattern
    assert analytics.mentions(competitor="Sky_ordic", db=known).empty


def test_mentions_filters(known):
    assert set(analytics.mentions(brand="Lumelle", db=known)["key"]) == {"mastodon:7", "mastodon:8"}
    assert set(analytics.mentions(competitor="SkyNordic", db=known)["key"]) == {"twitter:4", "twitter:5"}
    assert set(analytics.mentions(since=D2, db=known)["key"]) == {"twitter:6", "mastodon:7", "mastodon:8"}
    assert set(analytics.mentions(until=D1, db=known)["key"]) == {"twitter:9"}
    assert set(analytics.mentions(lang="fr", source="reddit", db=known)["key"]) == {"reddit:3"}
    assert len(analytics.mentions(intent="complaint", category="delivery", db=known)) == 3
    assert len(analytics.mentions(db=known, limit=2)) == 2
    known.mark_deleted("reddit:3", actor="test")
    assert "reddit:3" not in set(analytics.mentions(db=known)["key"])


def test_the_store_defaults_to_ecoute_db(known, monkeypatch):
    monkeypatch.setenv("ECOUTE_DB", known.url.removeprefix("sqlite:///"))    # a path, or the PostgreSQL URL
    assert len(analytics.mentions()) == len(ROWS)


def answer(store: Store, key: str, minutes: int, status: str = "resolved") -> None:
    """The case opened when its mention was posted (D1), first answered `minutes` later."""
    with store.engine.begin() as conn:
        conn.execute(queue_items.update().where(queue_items.c.mention_key == key).values(
            status=status, created_at=D1, first_response_at=D1 + timedelta(minutes=minutes),
            resolved_at=D1 + timedelta(hours=2)))


def test_cases_carry_response_times(known):
    answer(known, "twitter:1", 30)
    answer(known, "twitter:2", 90, status="replied")
    frame = analytics.cases(db=known)
    assert len(frame) == 3 and set(frame["status"]) == {"resolved", "replied", "new"}
    by_key = frame.set_index("mention_key")
    assert by_key.loc["twitter:1", "first_response_seconds"] == 1800
    assert by_key.loc["twitter:1", "resolution_seconds"] == 7200
    assert pd.isna(by_key.loc["twitter:2", "resolution_seconds"])
    assert by_key.loc["twitter:1", "brands"] == ("Aerolia",)
    assert list(analytics.cases(db=known, status="resolved")["mention_key"]) == ["twitter:1"]
    assert analytics.cases(db=known, brand="Lumelle").empty


def test_alerts_are_filtered_by_window_and_kind(known):
    from pipeline.store.alerts import alerts as table

    now = datetime(2026, 6, 11)
    with known.engine.begin() as conn:
        conn.execute(table.insert(), [
            {"kind": kind, "brand": "Aerolia", "subject": "", "window_start": end - timedelta(hours=1),
             "window_end": end, "value": 30, "baseline": 3, "score": 9, "reason": "30 mentions", "mention_keys": "[]",
             "created_at": now, "updated_at": now}
            for kind, end in (("volume_spike", D1), ("negative_share", D2))])
    assert list(analytics.alerts(since=D1 + timedelta(minutes=1), db=known)["kind"]) == ["negative_share"]
    assert list(analytics.alerts(kind="volume_spike", db=known)["window_end"]) == [pd.Timestamp(D1)]
    assert analytics.alerts(until=D1, db=known).empty


def test_top_authors_and_spikes(known):
    authors = analytics.top_authors(since=D0, db=known)
    assert authors.iloc[0]["author"] == "@user6" and authors.iloc[0]["reach"] == 1000
    daily = pd.DataFrame({"brand": ["A"] * 5, "day": pd.date_range("2026-01-01", periods=5),
                          "volume": [4, 5, 4, 30, 5]})
    assert list(analytics.spikes(daily)["volume"]) == [30]


def test_goals_against_targets(known):
    answer(known, "twitter:1", 30)
    answer(known, "twitter:2", 90, status="replied")
    rules = Rules.model_validate({
        "brands": [{"name": "Aerolia", "keywords": ["aerolia"], "competitors": ["SkyNordic", "Volantis"]},
                   {"name": "Lumelle", "keywords": ["lumelle"]}],
        "goals": [{"name": "fast", "metric": "median_first_response", "target": "1h", "direction": "below"},
                  {"name": "calm", "metric": "negative_share", "target": 0.2, "brand": "Aerolia"},
                  {"name": "loud", "metric": "share_of_voice", "target": 0.5, "direction": "above", "brand": "Aerolia"},
                  {"name": "done", "metric": "resolution_rate", "target": 0.9, "direction": "above"},
                  {"name": "liked", "metric": "net_sentiment", "target": 0, "direction": "above", "brand": "Lumelle"}]})
    table = goals.status(rules, since=D0.date(), until=D2, db=known).set_index("goal")
    assert table.loc["fast", "value"] == 3600 and not table.loc["fast", "met"]   # median of 30 and 90 min
    assert table.loc["fast", "shown"] == "60 min" and table.loc["fast", "target_shown"] == "60 min"
    assert table.loc["calm", "value"] == pytest.approx(3 / 5) and table.loc["calm", "shown"] == "60.0%"
    assert table.loc["loud", "value"] == pytest.approx(5 / 8) and table.loc["loud", "met"]
    assert table.loc["done", "value"] == 0.5         # resolved of the complaint cases opened in the period
    assert table.loc["liked", "value"] == 1.0 and table.loc["liked", "shown"] == "+1.00"
    trend = table.loc["calm", "trend"]
    assert len(trend) == 8 and trend[-1] == pytest.approx(3 / 5) and np.isnan(trend[-2])   # weeks end on 12 June


def test_topics_are_labelled_by_their_distinctive_phrases():
    texts = ["my parcel never arrived", "parcel lost again, no delivery", "delivery late, parcel missing",
             "refund still not paid", "where is my refund, charged twice", "refund please, billing error"]
    frame = pd.DataFrame({"text": texts, "created_at": pd.date_range("2026-01-01", periods=6, freq="D")})
    embeddings = np.array([[1, 0.1], [1, 0], [0.9, 0.1], [0, 1], [0.1, 1], [0, 0.9]])
    assigned, table = topics.find_topics(frame, embeddings, k=2)
    assert assigned.nunique() == 2 and assigned.iloc[0] == assigned.iloc[2] != assigned.iloc[3]
    labels = dict(zip(table["mentions"].index, table["label"]))
    assert any("parcel" in label for label in labels.values()) and any("refund" in label for label in labels.values())
    refund = table[table["label"].str.contains("refund")].iloc[0]
    assert refund["growth"] == pytest.approx(4.0) and refund["examples"][0] in texts[3:]


def test_bench_trends_prints_json_last(tmp_path):
    from pipeline.bench.bench_trends import run

    lines = []
    result = run(str(tmp_path / "bench.db"), 3000, lines.append)
    assert json.loads(lines[-1]) == result
    assert result["mentions"] == 3000 and result["added"] == 3000 and result["api_rows"] > 0
    assert run(str(tmp_path / "bench.db"), 3000, lines.append)["added"] == 0    # reused


def test_docstring_examples_run():
    import doctest

    from pipeline.alerts import digests
    from pipeline.analytics import report, trend_counts

    for module in (analytics, goals, trend_counts, report, digests):
        assert doctest.testmod(module).failed == 0, module.__name__

"""The dashboard through Streamlit's AppTest: what an agent sees and what their clicks store."""
from streamlit.testing.v1 import AppTest

from pipeline.store import Store
from tests.conftest import ROOT
from tests.dashboard.conftest import HOSTILE


def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_queue_shows_open_items_highest_priority_first(filled_db):
    at = app()
    assert not at.exception
    assert at.title[0].value == "Response queue"
    headers = [t for t in texts(at) if t.startswith("#")]
    assert [h.split(" · ")[1] for h in headers] == ["priority 90", "priority 89", "priority 88"]
    assert any("SLA" in t and "\u2068@user2\u2069 (2,000 followers)" in t for t in texts(at))   # the name isolated


def test_post_text_is_shown_as_plain_text_never_markdown(filled_db):
    at = app()
    assert HOSTILE in texts(at)
    rendered = [m.value for m in at.markdown]
    assert not any("evil.example" in value or "onerror" in value for value in rendered)


def test_claim_and_resolve_persist_in_the_store(filled_db):
    at = app()
    store = Store(filled_db)
    top = int(store.queue().iloc[0]["id"])
    at.sidebar.text_input[0].set_value("ana").run()
    at.button(key=f"claim-{top}").click().run()
    assert not at.exception
    item = store.queue().set_index("id").loc[top]
    assert (item["status"], item["assignee"]) == ("claimed", "ana")
    assert f"Claimed #{top}" in texts(at)
    at.button(key=f"resolve-{top}").click().run()
    assert top not in set(store.queue()["id"])
    assert list(store.audit()["action"]) == ["resolve", "claim"]


def sources_script():
    import dashboard

    dashboard.sources_page()


def test_sources_page_shows_each_sources_health(filled_db):
    Store(filled_db).record_health("demo-import", items=12)
    Store(filled_db).record_health("demo-import", error="feed answered 503")
    at = AppTest.from_function(sources_script, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("source")
    assert table.loc["demo-import", "items fetched"] == 12
    assert table.loc["demo-import", "last error"] == "feed answered 503"


def test_sources_page_shows_how_far_mastodon_and_bluesky_lag_behind_now(filled_db, tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from pipeline.mention import Mention

    rules = (ROOT / "rules.yaml").read_text().replace("sources:\n", "sources:\n"
        "  - {name: fediverse, type: mastodon, instance: https://mastodon.example, hashtags: [aerolia]}\n"
        "  - {name: bluesky-firehose, type: bluesky}\n", 1)
    (tmp_path / "rules.yaml").write_text(rules)
    monkeypatch.setenv("ECOUTE_RULES", str(tmp_path / "rules.yaml"))
    now = datetime.now(timezone.utc)
    Store(filled_db).save_mentions([Mention("mastodon", "1", "@aerolia late again", created_at=now - timedelta(minutes=42)),
                                    Mention("bluesky", "at://did:plc:x/app.bsky.feed.post/1", "aerolia ok",
                                            created_at=now - timedelta(seconds=30))])
    at = AppTest.from_function(sources_script, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("source")
    assert table.loc["fediverse", "lag behind now"] == "42 min"
    assert table.loc["bluesky-firehose", "lag behind now"] in ("0 min", "1 min")
    assert table.loc["fediverse", "type"] == "mastodon"


def alerts_script():
    import dashboard

    dashboard.alerts_page()


def test_alerts_page_lists_alerts_with_reasons_and_risks_as_plain_text(filled_db):
    from datetime import datetime, timedelta

    from pipeline.alerts.detection import Alert
    from pipeline.mention import Labels
    from pipeline.store.alerts import save_alerts

    store = Store(filled_db)
    at = AppTest.from_function(alerts_script, default_timeout=60).run()
    assert [i.value for i in at.info][0].startswith("No alerts yet")
    now = datetime.utcnow().replace(microsecond=0)
    reason = "40 mentions of Aerolia in 1 h, 4.0 expected for this hour and weekday (10×, p < 1e-12)"
    save_alerts(store, [Alert("volume_spike", "Aerolia", now - timedelta(hours=1), now, 40, 4.0, 12.5, reason,
                              ("twitter:1", "twitter:2"))], lambda alert: ["comms"])
    store.save_labels([Labels("twitter:1", "en", True, ("Aerolia",), "positive", 0.9, False, 0.1, "praise", False, 30,
                              transparency=("undisclosed_promotion",),
                              reasons=("promo code CAMI20, no disclosure marker",), model="test")], sla=3600)
    at = AppTest.from_function(alerts_script, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Alerts & risks"
    alerts = at.dataframe[0].value
    assert list(alerts["reason"]) == [reason] and list(alerts["brand"]) == ["Aerolia"]
    assert list(alerts["kind"]) == ["volume spike"] and list(alerts["mentions"]) == [2]
    assert list(alerts["webhooks"]) == ["comms: pending"]
    risks = at.dataframe[1].value
    assert list(risks["text"]) == [HOSTILE] and list(risks["risks"]) == ["undisclosed promotion"]
    assert list(risks["why"]) == ["promo code CAMI20, no disclosure marker"]
    assert not any("evil.example" in m.value or "onerror" in m.value for m in at.markdown)


def queue_huge_post(db: str, letter: str, priority: int) -> tuple[Store, str]:
    """A 1 MB complaint about Aerolia, classified and queued as twitter:99."""
    from pipeline.mention import Labels, Mention

    huge = "@aerolia " + letter * 1_000_000
    store = Store(db)
    store.save_mentions([Mention("twitter", "99", huge, author="@big")])
    store.save_labels([Labels("twitter:99", "en", True, ("Aerolia",), "negative", 0.8, True, 0.9, "complaint", True,
                              priority, model="test")], sla=3600)
    return store, huge


def test_a_huge_post_shows_its_start_and_how_much_more_there_is(filled_db):
    _, huge = queue_huge_post(filled_db, "x", 95)
    shown = [t for t in texts(app()) if t.startswith("@aerolia xxx")]
    assert shown == [huge[:2000] + f"… ({len(huge) - 2000:,} more characters)"]


def test_sources_page_never_shows_a_feed_password_stored_before_redaction(filled_db):
    import pipeline.store as S

    Store(filled_db).record_health("demo-import", items=1)
    with Store(filled_db).engine.begin() as conn:      # as an older version stored it
        conn.execute(S.source_health.update().values(
            last_error="feed https://ana:hunter2secret@news.example/feed?token=abc123 answered 500"))
    at = AppTest.from_function(sources_script, default_timeout=60).run()
    shown = at.dataframe[0].value.set_index("source").loc["demo-import", "last error"]
    assert "hunter2secret" not in shown and "abc123" not in shown and "news.example" in shown


def test_the_case_page_shows_a_huge_post_cut_with_how_much_more_there_is(filled_db):
    from pipeline.text import CASE_CHARS
    from tests.dashboard.test_desk_pages import case_script

    store, huge = queue_huge_post(filled_db, "y", 99)
    at = AppTest.from_function(case_script, default_timeout=60)
    at.query_params["case"] = str(int(store.queue().set_index("key").loc["twitter:99", "id"]))
    at.run()
    shown = [t for t in texts(at) if t.startswith("@aerolia yyy")]
    assert shown == [huge[:CASE_CHARS] + f"… ({len(huge) - CASE_CHARS:,} more characters)"]

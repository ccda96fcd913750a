"""Crisis and spike alerts: seasonal Poisson series with injected spikes, the demo's crisis day, dedup
across runs, and webhooks against a real local HTTP server (failing, then succeeding; dead)."""
from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from click.testing import CliRunner

from listeners.files import read_mentions
from pipeline.store import alerts as store_alerts
from pipeline.alerts.detection import Alert, detect, engagement, merge, run
from pipeline.bench.bench_alerts import START, burst, hourly_rate, seasonal
from pipeline.cli import main
from pipeline.jobs import DEMO_FILE
from pipeline.mention import Labels, Mention
from pipeline.rules import Alerts, Webhook
from pipeline.store import Store

NO_POSTS = pd.DataFrame()


def until(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    return frame[frame["created_at"] < now]


# -- detection on simulated series -------------------------------------------------------------------

def test_a_normal_daily_and_weekly_cycle_raises_nothing_over_a_month():
    frame = pd.concat([seasonal("Busy", 56, peak=20, seed=1), seasonal("Quiet", 56, peak=1.5, seed=2)])
    now = START + timedelta(days=56)
    found = detect(frame, NO_POSTS, Alerts(), "UTC", now - timedelta(days=28), now)
    assert found == []


def test_a_5x_spike_is_alerted_within_15_minutes_and_names_the_right_brand():
    normal = pd.concat([seasonal("Busy", 36, peak=20, seed=3), seasonal("Other", 36, peak=20, seed=4)])
    onset = START + timedelta(days=35, hours=10)             # a Friday morning
    spike = burst("Busy", onset, hours=2, per_hour=4 * hourly_rate(onset, 20), seed=5)
    frame = pd.concat([normal, spike])
    assert detect(until(frame, onset), NO_POSTS, Alerts(), "UTC", onset - timedelta(hours=6), onset) == []
    now = onset + timedelta(minutes=15)
    found = detect(until(frame, now), NO_POSTS, Alerts(), "UTC", now - timedelta(hours=6), now)
    assert [(a.kind, a.brand) for a in found] == [("volume_spike", "Busy")]
    alert = found[0]
    assert alert.window_start <= onset < alert.window_end <= now
    assert alert.value > 2 * alert.baseline and "mentions of Busy" in alert.reason
    assert set(alert.mention_keys) & set(spike["key"])


def test_overlapping_windows_of_one_crisis_merge_into_one_alert():
    onset = START + timedelta(days=35, hours=9)
    frame = pd.concat([seasonal("Busy", 36, peak=20, seed=6),
                       burst("Busy", onset, hours=4, per_hour=80, seed=7)])
    now = START + timedelta(days=36)
    found = detect(frame, NO_POSTS, Alerts(), "UTC", now - timedelta(days=1), now)
    spikes = [a for a in found if a.kind == "volume_spike"]
    assert len(spikes) == 1
    assert spikes[0].window_start <= onset and spikes[0].window_end >= onset + timedelta(hours=4)


def test_a_rise_in_negative_share_without_more_volume_is_its_own_alert():
    onset = START + timedelta(days=35, hours=9)
    normal = seasonal("Busy", 36, peak=20, seed=8, negative=0.15)
    late = normal[(normal["created_at"] < onset) | (normal["created_at"] >= onset + timedelta(hours=4))]
    angry = burst("Busy", onset, hours=4, per_hour=hourly_rate(onset, 20), seed=9, negative=0.85)
    now = START + timedelta(days=36)
    found = detect(pd.concat([late, angry]), NO_POSTS, Alerts(), "UTC", now - timedelta(days=1), now)
    assert [(a.kind, a.brand) for a in found] == [("negative_share", "Busy")]
    assert found[0].value > 0.6 and found[0].baseline < 0.25
    assert "negative" in found[0].reason and "usually" in found[0].reason


def test_a_brand_without_a_week_of_history_is_not_judged_yet():
    frame = burst("New", START + timedelta(days=2), hours=1, per_hour=50, seed=10)
    now = START + timedelta(days=3)
    assert detect(frame, NO_POSTS, Alerts(), "UTC", now - timedelta(days=3), now) == []


def test_alerts_merge_only_within_one_brand_and_kind():
    at = datetime(2026, 3, 1, 10)
    one = Alert("volume_spike", "A", at, at + timedelta(hours=1), 20, 2, 9, "a", ("k1",))
    two = Alert("volume_spike", "A", at + timedelta(minutes=30), at + timedelta(hours=2), 30, 2, 12, "b", ("k2",))
    other = Alert("negative_share", "A", at, at + timedelta(hours=1), 0.9, 0.2, 8, "c")
    merged = merge([two, other, one])
    spike = next(a for a in merged if a.kind == "volume_spike")
    assert len(merged) == 2 and (spike.window_start, spike.window_end) == (at, at + timedelta(hours=2))
    assert (spike.reason, spike.mention_keys) == ("b", ("k1", "k2"))
    with pytest.raises(ValueError, match="volume_spike"):
        Alert("spike", "A", at, at, 1, 1, 1, "x")


# -- fast-growing posts -------------------------------------------------------------------------------

def test_engagement_reads_the_counters_each_source_keeps():
    assert engagement({"public_metrics": {"like_count": 10, "retweet_count": 5, "reply_count": 1,
                                          "quote_count": 0, "impression_count": 9000}}) == 16
    assert engagement({"score": 120, "num_comments": 30}) == 150
    assert engagement({"favourites_count": 4, "reblogs_count": 2, "replies_count": 1}) == 7
    assert engagement({"score": -5}) == 0
    assert engagement({"demo": "aerolia-complaint"}) is None


def posts_store(store: Store, now: datetime) -> Mention:
    """Twenty ordinary Aerolia posts and one taking off, stored and labelled."""
    posts = [Mention("twitter", str(i), f"@aerolia post {i}", created_at=now - timedelta(hours=5 + i % 7),
                     author=f"@u{i}", author_followers=300,
                     raw={"public_metrics": {"like_count": 3 + i % 5, "retweet_count": i % 3}})
             for i in range(20)]
    viral = Mention("twitter", "999", "@aerolia they lost my dog", created_at=now - timedelta(hours=1),
                    author="@angry", author_followers=800,
                    raw={"public_metrics": {"like_count": 1500, "retweet_count": 700, "reply_count": 90}})
    store.save_mentions([*posts, viral])
    store.save_labels([Labels(m.key, "en", True, ("Aerolia",), "neutral", 0.7, False, 0.1, "other", False, 10,
                              model="test") for m in [*posts, viral]], sla=3600)
    return viral


def test_a_post_whose_engagement_grows_abnormally_fast_is_alerted_once(store, rules):
    now = datetime.utcnow()
    viral = posts_store(store, now)
    first = run(store, rules, since=timedelta(days=1), now=now)
    posts = [a for a in first.found if a.kind == "fast_post"]
    assert [(a.brand, a.subject) for a in posts] == [("Aerolia", viral.key)]
    assert posts[0].value > 1000 and "2,290 engagements" in posts[0].reason and "robust z" in posts[0].reason
    again = run(store, rules, since=timedelta(days=1), now=now)
    assert again.new_ids == [] and len(store.alerts()) == 1



def test_an_author_name_in_an_alert_reason_cannot_reverse_the_line(store, rules):
    now = datetime.utcnow()
    viral = posts_store(store, now)
    store.save_mentions([viral.replace(author="ma\u202elory")])
    reason = next(a.reason for a in run(store, rules, since=timedelta(days=1), now=now).found if a.kind == "fast_post")
    assert "\u202e" not in reason and f"post {viral.key} by \u2068malory\u2069: " in reason

# -- stored, deduplicated --------------------------------------------------------------------------

def save_frame(store: Store, frame: pd.DataFrame) -> None:
    """Store a simulated series as mentions with labels."""
    mentions = [Mention("file", row.key, f"{row.brands[0]} mention", created_at=row.created_at.to_pydatetime())
                for row in frame.itertuples()]
    store.save_mentions(mentions)
    store.save_labels([Labels(m.key, "en", True, tuple(row.brands), row.sentiment, 0.8, False, 0.1, "other",
                              False, 5, model="test") for m, row in zip(mentions, frame.itertuples())], sla=3600)


@pytest.fixture
def spiked(store):
    onset = START + timedelta(days=35, hours=10)
    spike = burst("Aerolia", onset, hours=2, per_hour=40, seed=12, negative=0.9)
    save_frame(store, pd.concat([seasonal("Aerolia", 36, peak=8, seed=11), spike]))
    return store, onset, spike


def test_rerunning_detection_updates_the_same_alerts_instead_of_adding(spiked, rules):
    store, onset, spike = spiked
    first = run(store, rules, since=timedelta(hours=4), now=onset + timedelta(minutes=30))
    assert "volume_spike" in {a.kind for a in first.found} and len(first.new_ids) == len(first.found)
    later = run(store, rules, since=timedelta(days=2), now=START + timedelta(days=36))
    assert set(later.updated_ids) == set(first.new_ids) and later.new_ids == []
    again = run(store, rules, since=timedelta(days=2), now=START + timedelta(days=36))
    assert again.new_ids == []
    table = store.alerts()
    assert sorted(table["kind"]) == ["negative_share", "volume_spike"]
    spike_row = table.set_index("kind").loc["volume_spike"]
    assert spike_row["window_start"] <= onset and spike_row["window_end"] >= onset + timedelta(hours=2)
    assert set(spike["key"].map(lambda k: f"file:{k}")) <= set(spike_row["mention_keys"])
    assert store.alerts(brand="Lumelle").empty


def test_the_demo_crisis_day_is_alerted_for_aerolia_only(store, rules):
    mentions = list(read_mentions(DEMO_FILE))                            # dates as written, not shifted
    latest = max(m.created_at for m in mentions)
    store.save_mentions(mentions)
    store.save_labels([demo_labels(m) for m in mentions], sla=3600)
    result = run(store, rules, since=timedelta(days=14), now=latest.replace(tzinfo=None) + timedelta(minutes=20))
    spikes = {(a.brand, a.window_start.date().isoformat()) for a in result.found if a.kind == "volume_spike"}
    assert ("Aerolia", "2026-11-10") in spikes
    assert not any(brand == "Lumelle" and day == "2026-11-10" for brand, day in spikes)
    crisis = {m.key for m in mentions if m.raw.get("demo") == "aerolia-crisis"}
    alert = next(a for a in result.found if a.kind == "volume_spike" and a.brand == "Aerolia"
                 and a.window_start.date().isoformat() == "2026-11-10")
    assert len(crisis & set(alert.mention_keys)) >= 60
    assert any(a.kind == "negative_share" and a.brand == "Aerolia" for a in result.found)


def test_cases_in_a_crisis_rise_in_the_queue_once_and_say_why(store, rules):
    mentions = list(read_mentions(DEMO_FILE))
    latest = max(m.created_at for m in mentions)
    store.save_mentions(mentions)
    store.save_labels([demo_labels(m) for m in mentions], sla=3600)
    before = store.queue(limit=5000).set_index("key")
    now = latest.replace(tzinfo=None) + timedelta(minutes=20)
    run(store, rules, since=timedelta(days=14), now=now)
    crisis = set().union(*store.alerts()["mention_keys"].map(set))
    after = store.queue(limit=5000).set_index("key")
    members = [k for k in after.index if k in crisis]
    assert len(members) >= 20, "the crisis day's complaints are queued"
    weight = rules.queue.weights.crisis
    for key in members:
        assert after.loc[key, "priority"] == min(100, before.loc[key, "priority"] + weight)
        assert len([r for r in after.loc[key, "reasons"] if r.startswith("crisis: ")]) == 1
        why = next(r for r in after.loc[key, "reasons"] if r.startswith("crisis: "))
        assert why.split(" for ")[-1] in after.loc[key, "brands"]
    outside = [k for k in after.index if k not in crisis and after.loc[k, "mentions"] == 1]
    assert outside and all(after.loc[k, "priority"] == before.loc[k, "priority"] for k in outside)
    run(store, rules, since=timedelta(days=14), now=now)             # rescanning adds nothing more
    again = store.queue(limit=5000).set_index("key")
    assert all(again.loc[k, "priority"] == after.loc[k, "priority"] for k in members)
    assert all(sum(r.startswith("crisis") for r in again.loc[k, "reasons"]) == 1 for k in members)


def demo_labels(mention: Mention) -> Labels:
    """Brand and sentiment from what each demo post was written as (raw.demo), not from the model."""
    kind = mention.raw.get("demo", "")
    text = mention.text.lower()
    brands = tuple(b for b, words in (("Aerolia", ("aerolia", "aérolia")), ("Lumelle", ("lumelle",)))
                   if any(w in text for w in words) and kind != "not-relevant")
    negative = kind.endswith(("complaint", "crisis", "accusation"))
    return Labels(mention.key, mention.lang or "en", bool(brands), brands, "negative" if negative else "neutral",
                  0.8, negative, 0.5, "complaint" if negative else "other", negative, 20, model="demo-kinds")


# -- webhooks --------------------------------------------------------------------------------------

class Hook:
    """A local webhook receiver that answers the given statuses in turn (then the last one)."""

    def __init__(self, statuses=(200,)):
        self.statuses, self.bodies = list(statuses), []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T1/B2/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    made = []

    def make(statuses=(200,)):
        made.append(Hook(statuses))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/T1/B2/secret-token"


def spikes_only(name: str, **where) -> Webhook:
    return Webhook(name=name, kinds=["volume_spike"], **where)


def with_hooks(rules, *webhooks: Webhook, **alerts):
    return rules.model_copy(update={"alerts": Alerts(webhooks=list(webhooks), backoff=timedelta(0), **alerts)})


def test_a_new_alert_is_posted_as_slack_and_teams_json(spiked, rules, hooks):
    store, onset, _ = spiked
    hook = hooks()
    configured = with_hooks(rules, spikes_only("comms", url=hook.url))
    result = run(store, configured, since=timedelta(hours=4), now=onset + timedelta(minutes=30))
    assert [d.error for d in result.deliveries] == [None]
    body = hook.bodies[0]
    assert body["text"].startswith("Mention spike for Aerolia: ") and "expected" in body["text"]
    assert body["alert"]["kind"] == "volume_spike" and body["alert"]["brand"] == "Aerolia"
    assert body["alert"]["value"] >= 8 and body["alert"]["window_start"].endswith("Z")
    assert body["alert"]["mentions"] > 0 and body["alert"]["mention_keys"][0].startswith("file:")
    run(store, configured, since=timedelta(hours=4), now=onset + timedelta(minutes=35))
    assert len(hook.bodies) == 1                   # an updated alert is not sent again


def test_a_webhook_answering_500_then_200_is_retried_within_the_run(spiked, rules, hooks, monkeypatch):
    store, onset, _ = spiked
    hook = hooks(statuses=(500, 200))
    monkeypatch.setenv("TEAMS_HOOK_URL", hook.url)            # the URL holds a secret: read from the environment
    waits = []
    result = run(store, with_hooks(rules, spikes_only("teams", url_env="TEAMS_HOOK_URL")),
                 since=timedelta(hours=4), now=onset + timedelta(minutes=30), sleep=waits.append)
    assert [(d.webhook, d.attempts, d.error) for d in result.deliveries] == [("teams", 2, None)]
    assert len(hook.bodies) == 2 and len(waits) == 1
    row = store_alerts.deliveries(store).iloc[0]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)


def test_a_dead_webhook_is_recorded_and_retried_later_without_resending_successes(spiked, rules, hooks):
    store, onset, _ = spiked
    good = hooks()
    dead = spikes_only("dead", url=dead_url(), timeout=timedelta(seconds=1))
    configured = with_hooks(rules, dead, spikes_only("good", url=good.url), attempts=2)
    result = run(store, configured, since=timedelta(hours=4), now=onset + timedelta(minutes=30), sleep=lambda s: None)
    outcome = {d.webhook: d for d in result.deliveries}
    assert outcome["good"].error is None and len(good.bodies) == 1
    assert outcome["dead"].attempts == 2 and "ConnectionError" in outcome["dead"].error
    assert "secret-token" not in outcome["dead"].error
    rows = store_alerts.deliveries(store).set_index("webhook")
    assert rows.loc["dead", "status"] == "failed" and rows.loc["dead", "attempts"] == 2
    assert "volume_spike" in set(store.alerts()["kind"])     # the alert itself is stored regardless
    revived = hooks()
    fixed = with_hooks(rules, dead.model_copy(update={"url": revived.url}), spikes_only("good", url=good.url))
    later = run(store, fixed, since=timedelta(hours=4), now=onset + timedelta(minutes=35), sleep=lambda s: None)
    assert [(d.webhook, d.error) for d in later.deliveries] == [("dead", None)]
    assert len(revived.bodies) == 1 and len(good.bodies) == 1
    rows = store_alerts.deliveries(store).set_index("webhook")
    assert rows.loc["dead", "status"] == "sent" and rows.loc["dead", "attempts"] == 3


def test_webhook_config_needs_exactly_one_url(rules):
    with pytest.raises(ValueError, match="url_env"):
        Webhook(name="x")
    with pytest.raises(ValueError, match="https://"):
        Webhook(name="x", url="ftp://example.com/hook")


# -- command line ------------------------------------------------------------------------------------

def test_ecoute_alerts_prints_the_alerts_and_flags_new_ones(spiked, rules_file, db):
    store, onset, _ = spiked
    args = ["alerts", "--db", db, "--rules", str(rules_file), "--since", "400d"]
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "volume_spike Aerolia" in first.output and "(new)" in first.output
    assert "2 new alerts, 0 updated" in first.output
    second = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "(new)" not in second.output and "0 new alerts, 2 updated" in second.output
    bad = CliRunner().invoke(main, ["alerts", "--db", db, "--since", "soon"])
    assert bad.exit_code == 2 and "expected a duration" in bad.output

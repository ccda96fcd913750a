"""`ecoute listen`: pages stored with their cursors, per-source backoff, health, deletions, kill -9."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import listeners
from listeners.base import Backoff, Page, RateLimited, Unavailable
from listeners.runner import run_source
from pipeline.cli import main
from pipeline.mention import Mention
from pipeline.rules import parse_rules
from pipeline.store import Saved, Store
from tests.conftest import ROOT, write_jsonl


def rules_for(tmp_path, path, extra=""):
    text = (f"brands:\n  - name: Aerolia\n    keywords: [aerolia]\nsources:\n"
            f"  - name: backfill\n    type: file\n    path: {path}\n    interval: 1s\n{extra}")
    file = tmp_path / "rules.yaml"
    file.write_text(text)
    return file


def rows(n, start=0):
    return [{"id": f"r{i}", "text": f"aerolia post {i}", "created_at": "2026-11-01T10:00:00Z"}
            for i in range(start, start + n)]


def test_listen_once_stores_a_file_and_resumes_after_its_cursor(tmp_path, db):
    data = write_jsonl(tmp_path / "m.jsonl", rows(30))
    rules = rules_for(tmp_path, data)
    first = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", str(rules)])
    assert first.exit_code == 0, first.output
    assert "backfill: 30 fetched, 30 new" in first.output
    with data.open("a") as handle:  # the file grows, as an export would
        handle.write("".join(json.dumps(r) + "\n" for r in rows(5, start=30)))
    second = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", str(rules)])
    assert "backfill: 5 fetched, 5 new" in second.output
    assert Store(db).count("mentions") == 35 and Store(db).get_cursor("backfill") == {"rows": 35}
    health = CliRunner().invoke(main, ["sources", "--db", db, "--rules", str(rules)])
    assert "backfill (file, every 0:00:01): last success" in health.output and "35 items fetched" in health.output


def test_a_missing_file_is_reported_by_source_and_path(tmp_path, db):
    rules = rules_for(tmp_path, tmp_path / "nope.jsonl")
    result = CliRunner().invoke(main, ["listen", "--once", "--no-classify", "--db", db, "--rules", str(rules)])
    assert result.exit_code == 1
    assert f"source 'backfill': file {tmp_path / 'nope.jsonl'} not found" in result.output
    assert Store(db).health().iloc[0]["last_error"].startswith("source 'backfill'")


def test_rate_limits_back_off_by_the_servers_hint_and_success_resets(tmp_path, store, monkeypatch):
    calls = []

    def flaky(source, cursor, rules):
        calls.append(cursor)
        if len(calls) == 1:
            raise RateLimited("429 from api", retry_after=7)
        if len(calls) == 2:
            raise Unavailable("503 from api")
        yield Page([Mention("file", "1", "aerolia")], {"n": 1})

    monkeypatch.setitem(listeners.LISTENERS, "file", flaky)
    rules = parse_rules(rules_for(tmp_path, tmp_path / "x.jsonl").read_text())
    backoff = Backoff(rng=lambda: 1.0)
    limited = run_source(store, rules, rules.sources[0], backoff)
    assert (limited.error, limited.wait) == ("429 from api", 7)
    assert store.health().iloc[0]["backoff_until"] is not None
    down = run_source(store, rules, rules.sources[0], backoff)
    assert down.wait == 4.0  # second failure, no hint: 2 s doubled
    ok = run_source(store, rules, rules.sources[0], backoff)
    assert (ok.error, ok.new, backoff.failures) == (None, 1, 0)
    assert store.get_cursor("backfill") == {"n": 1}


class Kept:
    """A PageStore in memory: the runner keeps pages wherever its caller says, not only in pipeline.store."""

    def __init__(self):
        self.cursors, self.pages, self.deleted, self.health = {}, [], [], []

    def get_cursor(self, source_name):
        return self.cursors.get(source_name)

    def save_page(self, source_name, batch, cursor):
        self.pages.append([m.key for m in batch])
        self.cursors[source_name] = cursor
        return Saved(new=len(batch))

    def mark_deleted(self, key, actor, purge=False, reason=""):
        self.deleted.append((key, actor))
        return True

    def record_health(self, source_name, items=0, error=None, backoff_until=None):
        self.health.append((source_name, items, error))


def test_the_runner_keeps_pages_in_what_its_caller_hands_it(tmp_path, monkeypatch):
    def two_pages(source, cursor, rules):
        yield Page([Mention("file", "1", "aerolia"), Mention("file", "2", "aerolia")], {"n": 2}, deleted=["file:0"])
        yield Page([Mention("file", "3", "aerolia")], {"n": 3})
        raise RuntimeError("bug after the second page")

    monkeypatch.setitem(listeners.LISTENERS, "file", two_pages)
    rules = parse_rules(rules_for(tmp_path, tmp_path / "x.jsonl").read_text())
    kept = Kept()
    outcome = run_source(kept, rules, rules.sources[0], Backoff(rng=lambda: 1.0), describe=lambda exc: f"described: {exc}")
    assert kept.pages == [["file:1", "file:2"], ["file:3"]] and kept.cursors == {"backfill": {"n": 3}}
    assert kept.deleted == [("file:0", "source:backfill")]
    assert (outcome.fetched, outcome.new, outcome.error) == (3, 3, "described: bug after the second page")
    assert kept.health == [("backfill", 3, "described: bug after the second page")]


def test_upstream_deletions_mark_or_purge_and_are_audited(store, db):
    store.save_mentions([Mention("twitter", "1", "gone soon"), Mention("twitter", "2", "also gone")])
    result = CliRunner().invoke(main, ["delete", "twitter:1", "--db", db])
    assert result.exit_code == 0 and "1 marked deleted" in result.output
    marked = store.mention_rows().set_index("key").loc["twitter:1"]
    assert marked["text"] == "" and marked["deleted_at"] is not None
    purged = CliRunner().invoke(main, ["delete", "twitter:2", "twitter:3", "--purge", "--db", db])
    assert purged.exit_code == 1 and "not stored: twitter:3" in purged.output
    assert list(store.mention_rows()["key"]) == ["twitter:1"]
    audit = store.audit()
    assert list(audit["action"]) == ["purge", "delete"] and list(audit["mention_key"]) == ["twitter:2", "twitter:1"]


def _cursor_rows(db):
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("select cursor from cursors where source_name='backfill'").fetchone()
        return json.loads(row[0])["rows"] if row else 0
    except sqlite3.OperationalError:
        return 0


def _listen(db, rules, *extra):
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "listen", "--no-classify", "--db", db,
                             "--rules", str(rules), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)


def test_killed_with_sigkill_mid_run_a_restart_stores_every_mention_exactly_once(tmp_path, db):
    total = 40_000
    data = write_jsonl(tmp_path / "big.jsonl", rows(total))
    rules = rules_for(tmp_path, data)
    process = _listen(db, rules)
    deadline = time.time() + 120
    while time.time() < deadline and not (0 < _cursor_rows(db) < total):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    done_before = _cursor_rows(db)
    assert 0 < done_before < total, "the listener was not caught mid-run"
    again = _listen(db, rules, "--once")
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert f"backfill: {total - done_before} fetched" in output
    with sqlite3.connect(db) as conn:
        count, distinct = conn.execute("select count(*), count(distinct source_id) from mentions").fetchone()
    assert count == distinct == total


def test_sigterm_stops_the_service_gracefully(tmp_path, db):
    data = write_jsonl(tmp_path / "m.jsonl", rows(3))
    process = _listen(db, rules_for(tmp_path, data))
    deadline = time.time() + 60
    while time.time() < deadline and _cursor_rows(db) < 3:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "backfill: 3 fetched, 3 new" in output and "stopped" in output

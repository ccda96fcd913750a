"""The CLI end to end on a temp store, as a user runs it."""
import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import Store
from tests.conftest import ROOT, write_jsonl

FIELDS = {"id", "lang", "sentiment", "sentiment_score", "complaint", "complaint_score", "intent",
          "needs_response", "relevant", "brands", "transparency", "priority", "emotion", "emotion_score", "irony_score"}
TEXTS = ["@aerolia lost my bag, 3 days and no answer. Terrible service, worst airline ever 😡",
         "Est-ce que Lumelle livre en Suisse ?",
         "Loved the new Lumelle serum, my skin is glowing ✨",
         "Aerolia flight AE{n} delayed 4h, missed my meeting. Never again.",
         "Lumelle m'a facturé deux fois la commande n°{n}, je veux un remboursement",
         "Beautiful sunset over the lake tonight",
         "Does @aerolia allow two cabin bags on flight {n}?",
         "Nouvel article : Aérolia ouvre la ligne Lyon–Porto"]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def mentions_file(tmp_path):
    rows = [{"id": f"t{i}", "source": "twitter", "text": TEXTS[i % len(TEXTS)].format(n=i),
             "author": f"@user{i % 7}", "author_followers": 10 ** (i % 6), "created_at": f"2026-11-0{1 + i % 9}T10:00:00Z"}
            for i in range(40)]
    return write_jsonl(tmp_path / "mentions.jsonl", rows)


def test_ingesting_the_same_file_twice_stores_each_mention_once(mentions_file, db, rules_file):
    first = run("ingest", mentions_file, "--db", db, "--rules", rules_file)
    assert first.exit_code == 0, first.output
    assert "40 rows, 40 new mentions" in first.output
    second = run("ingest", mentions_file, "--db", db, "--rules", rules_file)
    assert "40 rows, 0 new mentions, 40 already stored" in second.output
    store = Store(db)
    assert store.count("mentions") == 40 and store.count("classifications") == 40
    queue = store.queue()
    assert len(queue) == store.count("queue_items") > 0
    assert queue["priority"].is_monotonic_decreasing


def test_a_bad_row_is_named_by_line_and_nothing_of_the_file_is_stored(tmp_path, db, rules_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "fine"}\n{"id": "2", "text": "x", "author_followers": "lots"}\n'
                   '{"id": "3"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["ingest", str(bad), "--db", db, "--rules", str(rules_file)])
    assert result.exit_code == 1
    assert f"{bad}:2: field 'author_followers': expected a whole number, got 'lots'" in result.output
    assert f"{bad}:3: missing field 'text'" in result.output
    assert f"{bad}:4: not valid JSON" in result.output
    assert Store(db).count("mentions") == 0
    partial = CliRunner().invoke(main, ["ingest", str(bad), "--db", db, "--skip-invalid", "--no-classify"])
    assert partial.exit_code == 0 and "3 bad rows skipped" in partial.output
    assert Store(db).count("mentions") == 1


def test_csv_ingest_reports_the_row_line(tmp_path, db):
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("id,text,created_at\n1,hello aerolia,2026-11-01T10:00:00Z\n2,bad date,yesterday\n")
    result = CliRunner().invoke(main, ["ingest", str(csv_file), "--db", db, "--no-classify"])
    assert result.exit_code == 1 and f"{csv_file}:3: field 'created_at'" in result.output


def test_classify_1000_mentions_gives_1000_lines_in_order_with_every_field(tmp_path, rules_file):
    rows = [{"id": f"m{i:04d}", "text": TEXTS[i % len(TEXTS)].format(n=i)} for i in range(1000)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = run("classify", source, "-o", out, "--rules", rules_file)
    assert result.exit_code == 0 and "1000 mentions classified" in result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in rows]
    assert all(FIELDS <= set(r) for r in lines)
    first = lines[0]
    assert first["relevant"] and first["brands"] == ["Aerolia"] and first["sentiment"] == "negative"
    assert first["intent"] == "complaint" and first["needs_response"] and 0 <= first["priority"] <= 100
    assert lines[5]["relevant"] is False and lines[5]["priority"] == 0 and lines[5]["brands"] == []
    assert lines[1]["lang"] == "fr" and lines[1]["intent"] == "question"
    assert {r["sentiment"] for r in lines} <= {"negative", "neutral", "positive"}


def test_rules_check_exits_non_zero_with_the_line(tmp_path, rules_file):
    ok = run("rules", "check", rules_file)
    assert ok.exit_code == 0 and "ok (2 brands" in ok.output
    broken = tmp_path / "rules.yaml"
    broken.write_text(rules_file.read_text().replace("    exclude:", "    exclud:", 1))
    result = CliRunner().invoke(main, ["rules", "check", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:14 brands[0].exclud: unknown field (did you mean 'exclude'?)" in result.output


def test_every_command_has_help_with_an_example():
    for command in (["ingest"], ["classify"], ["rules", "check"], ["demo"], ["dashboard"], ["train"]):
        result = run(*command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output


def test_demo_loads_classifies_and_queues_without_a_dashboard(db):
    if not (ROOT / "pipeline" / "demo" / "mentions.jsonl").exists():
        pytest.fail("the bundled demo set is missing")
    result = run("demo", "--db", db, "--no-dashboard", "--rules", ROOT / "rules.yaml")
    assert result.exit_code == 0, result.output
    store = Store(db)
    assert store.count("mentions") >= 300 and store.count("classifications") == store.count("mentions")
    rows = store.mention_rows()
    assert set(rows["lang"].dropna()) >= {"en", "fr"} and rows["relevant"].sum() > 200
    daily = store.daily()
    assert set(daily["brand"]) == {"Aerolia", "Lumelle"} and daily["day"].nunique() >= 28
    assert len(store.response_times()) > 30 and len(store.queue()) >= 3   # the demo's history closed most
    crisis = set(rows.loc[rows["raw"].str.contains('"aerolia-crisis"'), "key"])
    alerts = store.alerts()                        # the outage day, found by the detection `ecoute demo` runs
    spikes = alerts[alerts["kind"] == "volume_spike"]
    assert "alerts: " in result.output and list(spikes["brand"]) == ["Aerolia"]
    assert len(crisis & set(spikes["mention_keys"].iloc[0])) >= 60
    again = run("demo", "--db", db, "--no-dashboard", "--rules", ROOT / "rules.yaml")
    assert "0 newly classified" in again.output and Store(db).count("mentions") == store.count("mentions")


def test_db_current_reads_the_revision_and_db_upgrade_migrates(db):
    from pipeline.store.migrations import HEAD

    assert f"none (head is {HEAD}; run `ecoute db upgrade`)" in run("db", "current", "--db", db).output
    result = run("db", "upgrade", "--db", db)
    assert result.exit_code == 0 and f"at revision {HEAD} (head)" in result.output
    assert run("db", "current", "--db", db).output.strip() == f"{HEAD} (head)"


def test_users_are_added_from_stdin_listed_and_disabled(db):
    from pipeline.desk.users import authenticate

    added = run("users", "add", "ana", "--role", "agent", "--password-stdin", "--db", db, input="pa55 word, long\n")
    assert added.exit_code == 0 and added.output.strip() == "added ana (agent)"
    assert authenticate(Store(db), "ana", "pa55 word, long").role == "agent"
    empty = run("users", "add", "bo", "--role", "admin", "--password-stdin", "--db", db, input="\n")
    assert empty.exit_code == 1 and "password read from stdin is empty" in empty.output
    taken = run("users", "add", "ana", "--role", "admin", "--password-stdin", "--db", db, input="x long enough\n")
    assert taken.exit_code == 1 and "user 'ana' already exists" in taken.output
    assert run("users", "list", "--db", db).output.startswith("ana\tagent\tcreated ")
    assert run("users", "disable", "ana", "--db", db).output.strip() == "disabled ana"
    assert run("users", "list", "--db", db).output.strip().endswith("disabled")
    assert authenticate(Store(db), "ana", "pa55 word, long") is None
    assert "pa55" not in "".join(Store(db).audit()["detail"].fillna(""))


def test_an_agent_is_marked_away_and_back_from_the_command_line_and_it_is_audited(db):
    run("users", "add", "ana", "--role", "agent", "--no-password", "--db", db)
    assert "\tsigned_out" in run("users", "list", "--db", db).output
    away = run("users", "availability", "ana", "away", "--db", db, "--actor", "lead")
    assert away.exit_code == 0 and away.output.strip() == "ana is now away"
    assert "\taway" in run("users", "list", "--db", db).output
    wrong = run("users", "availability", "ana", "busy", "--db", db)
    assert wrong.exit_code == 2 and "'available', 'away', 'signed_out'" in wrong.output
    nobody = run("users", "availability", "zed", "available", "--db", db)
    assert nobody.exit_code == 1 and "no user 'zed'" in nobody.output
    entry = Store(db).audit().iloc[0]
    assert (entry["actor"], entry["action"]) == ("lead", "user_availability") and '"away"' in entry["detail"]


def test_erase_and_prune_from_the_command_line(tmp_path, db):
    from datetime import datetime, timedelta, timezone

    from pipeline.mention import Labels, Mention

    store = Store(db)
    now = datetime.now(timezone.utc)
    posts = [Mention(source="twitter", source_id="1", text="@aerolia lost bag", author="@dan", created_at=now),
             Mention(source="twitter", source_id="2", text="@aerolia late", author="@eve",
                     created_at=now - timedelta(days=400))]
    store.save_mentions(posts)
    store.save_labels([Labels(mention_key=p.key, lang="en", relevant=True, brands=("Aerolia",), sentiment="negative",
                              sentiment_score=0.9, complaint=True, complaint_score=0.9, intent="complaint",
                              needs_response=True, priority=50, model="test") for p in posts], 3600)
    dry = run("erase", "--author", "DAN", "--dry-run", "--db", db)
    assert dry.output == "would remove 1 case_events, 1 case_mentions, 1 classifications, 1 mentions, 1 queue_items\n"
    done = run("erase", "--author", "@dan", "--actor", "dpo", "--db", db)
    assert done.output.startswith("removed ") and Store(db).count("mentions") == 1
    assert run("erase", "--author", "@", "--db", db).exit_code == 2

    rules = tmp_path / "rules.yaml"
    rules.write_text("brands:\n  - {name: Aerolia, keywords: [aerolia]}\n")
    unset = run("prune", "--db", db, "--rules", rules)
    assert unset.exit_code == 1 and "privacy.retention_days is not set" in unset.output
    rules.write_text("brands:\n  - {name: Aerolia, keywords: [aerolia]}\nprivacy: {retention_days: 365}\n")
    assert "older than 365 days: removed nothing" in run("prune", "--db", db, "--rules", rules).output  # open case
    store.resolve(int(store.queue().iloc[0]["id"]), "ana")
    assert "1 mentions" in run("prune", "--db", db, "--rules", rules, "--dry-run").output
    assert "removed " in run("prune", "--db", db, "--rules", rules).output and Store(db).count("mentions") == 0


def test_a_user_is_re_enabled_given_a_role_and_a_new_password(db):
    from pipeline.desk.users import authenticate

    run("users", "add", "bo", "--role", "marketing", "--password-stdin", "--db", db, input="first-pass-long\n")
    run("users", "disable", "bo", "--db", db)
    assert run("users", "enable", "bo", "--db", db).output.strip() == "enabled bo"
    assert run("users", "role", "bo", "admin", "--db", db).output.strip() == "bo is now admin"
    assert run("users", "password", "bo", "--password-stdin", "--db", db, input="second-pass-long\n").exit_code == 0
    assert authenticate(Store(db), "bo", "first-pass-long") is None
    assert authenticate(Store(db), "bo", "second-pass-long").role == "admin"
    assert run("users", "password", "bo", "--password-stdin", "--db", db, input="\n").exit_code == 1
    assert "no user 'zed'" in run("users", "enable", "zed", "--db", db).output


def test_the_dashboard_refuses_a_network_address_while_the_store_has_no_users(db, monkeypatch):
    """Single-user mode has no sign-in: served beyond this computer it would hand anyone the admin pages."""
    started = []
    monkeypatch.setattr("pipeline.cli.serve.subprocess.call", lambda command, env: started.append(command) or 0)
    dashboard = lambda address: run("dashboard", "--address", address, "--db", db,  # noqa: E731
                                    "--rules", ROOT / "rules.yaml")
    for address in ("0.0.0.0", "192.168.1.20", "::", ""):
        refused = dashboard(address)
        assert refused.exit_code == 1 and "ecoute users add" in refused.output, address
    assert started == []
    for address in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert dashboard(address).exit_code == 0
    run("users", "add", "ana", "--role", "admin", "--password-stdin", "--db", db, input="a long enough pass\n")
    assert dashboard("0.0.0.0").exit_code == 0          # with sign-in required, the team may reach it
    assert [c[c.index("--server.address") + 1] for c in started] == ["127.0.0.1", "localhost", "::1", "127.0.0.2",
                                                                     "0.0.0.0"]


def test_users_need_a_password_of_12_characters_and_a_name_of_at_most_120(db):
    short = run("users", "add", "ana", "--role", "agent", "--password-stdin", "--db", db, input="elevenchars\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    long_name = run("users", "add", "a" * 121, "--role", "agent", "--password-stdin", "--db", db,
                    input="correct horse battery\n")
    assert long_name.exit_code == 1 and "at most 120 characters" in long_name.output
    run("users", "add", "ana", "--role", "agent", "--password-stdin", "--db", db, input="correct horse battery\n")
    changed = run("users", "password", "ana", "--password-stdin", "--db", db, input="too short\n")
    assert changed.exit_code == 1 and "at least 12 characters" in changed.output
    for command in ("add", "password"):       # the help says it, however click wraps the lines
        assert "at least 12 characters" in " ".join(run("users", command, "--help").output.split())


def test_commands_print_no_library_deprecation_warning(tmp_path, mentions_file):
    """A user sees our output, not a FutureWarning from a library (peft asks transformers for a
    deprecated property when it loads the shipped adapter): checked in a fresh interpreter, as run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | {"PYTHONPATH": str(ROOT)}   # as a user has it
    for args in (["rules", "check", ROOT / "rules.yaml"],
                 ["ingest", mentions_file, "--db", tmp_path / "w.db", "--rules", ROOT / "rules.yaml"]):
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Warning" not in done.stderr, (args[0], done.stderr[-2000:])

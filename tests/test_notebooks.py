"""Every notebook runs top to bottom on the bundled demo data, and on a second store built from other
brands' rules (no competitors, no goals) through the normal ingest path."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from tests.conftest import ROOT

EXPECTED = {"sentiment_overview.ipynb", "sentiment_share_of_voice.ipynb", "complaints_response_times.ipynb",
            "transparency_risks_alerts.ipynb"}
OTHER_RULES = ROOT / "tests" / "data" / "other_brands.yaml"


def notebooks() -> list:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert EXPECTED <= {n.name for n in found}
    return found


def run_notebooks(db, rules) -> None:
    # the kernel runs from notebooks/: PYTHONPATH makes it import this checkout's pipeline, not the installed one
    env = {**os.environ, "ECOUTE_DB": str(db), "ECOUTE_RULES": str(rules),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                             *map(str, notebooks())], cwd=ROOT / "notebooks", capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_notebooks_execute(tmp_path):
    from pipeline.alerts.detection import run as detect_alerts
    from pipeline.jobs import load_demo
    from pipeline.rules import load_rules
    from pipeline.store import Store

    # the demo is classified once here rather than once per notebook (each would load the model)
    demo = tmp_path / "demo.db"
    store, rules = Store(str(demo)), load_rules(ROOT / "rules.yaml")
    load_demo(store, rules)
    detect_alerts(store, rules, since=timedelta(days=60), deliver=False)    # as `ecoute demo` does
    run_notebooks(demo, ROOT / "rules.yaml")

    # the same demo store gives the one-minute report (`ecoute report --since 7d -o report.html`)
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "report.html"
    ran = CliRunner().invoke(main, ["report", "--since", "7d", "-o", str(out), "--db", str(demo),
                                    "--rules", str(ROOT / "rules.yaml")])
    assert ran.exit_code == 0, ran.output
    page = out.read_text(encoding="utf-8")
    assert "Aerolia" in page and "Lumelle" in page and page.count("<svg") >= 3
    assert "volume_spike" in page and "<h2>Top complaints</h2>" in page and "<script" not in page


def test_notebooks_execute_on_a_store_of_other_brands_without_competitors(tmp_path):
    """tests/data/other_brands.*: Parcelio and Finora, no competitors, no goals; the posts are dated
    over the last ten days and go through `ecoute ingest`, as a new user's own data would."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.store import Store

    now = datetime.now(timezone.utc)
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "other_brands.jsonl").read_text().splitlines()]
    dated = tmp_path / "mentions.jsonl"
    dated.write_text("".join(json.dumps({**row, "created_at": (now - timedelta(days=i % 10, hours=2)).isoformat()},
                                        ensure_ascii=False) + "\n" for i, row in enumerate(rows)), encoding="utf-8")
    db = tmp_path / "other.db"
    ran = CliRunner().invoke(main, ["ingest", str(dated), "--db", str(db), "--rules", str(OTHER_RULES)])
    assert ran.exit_code == 0, ran.output
    assert {"Parcelio", "Finora"} <= set(Store(str(db)).daily()["brand"])
    run_notebooks(db, OTHER_RULES)

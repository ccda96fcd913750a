"""Every notebook runs top to bottom on the bundled demo data."""
import os
import subprocess
import sys
from datetime import timedelta

from tests.conftest import ROOT

EXPECTED = {"sentiment_overview.ipynb", "sentiment_share_of_voice.ipynb", "complaints_response_times.ipynb",
            "transparency_risks_alerts.ipynb"}


def test_notebooks_execute(tmp_path):
    from pipeline.alerts import run as detect_alerts
    from pipeline.jobs import load_demo
    from pipeline.rules import load_rules
    from pipeline.store import Store

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert EXPECTED <= {n.name for n in notebooks}
    # the demo is classified once here rather than once per notebook (each would load the model)
    demo = tmp_path / "demo.db"
    store, rules = Store(str(demo)), load_rules(ROOT / "rules.yaml")
    load_demo(store, rules)
    detect_alerts(store, rules, since=timedelta(days=60), deliver=False)    # as `ecoute demo` does
    env = {**os.environ, "ECOUTE_DB": str(demo), "ECOUTE_RULES": str(ROOT / "rules.yaml")}
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                             *map(str, notebooks)], cwd=ROOT / "notebooks", capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

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

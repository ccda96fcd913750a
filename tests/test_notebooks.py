"""Every notebook runs top to bottom on the bundled demo data."""
import os
import subprocess
import sys

from tests.conftest import ROOT

EXPECTED = {"sentiment_overview.ipynb", "sentiment_share_of_voice.ipynb", "complaints_response_times.ipynb",
            "transparency_risks_alerts.ipynb"}


def test_notebooks_execute(tmp_path):
    from pipeline.jobs import load_demo
    from pipeline.rules import load_rules
    from pipeline.store import Store

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert EXPECTED <= {n.name for n in notebooks}
    # the demo is classified once here rather than once per notebook (each would load the model)
    demo = tmp_path / "demo.db"
    load_demo(Store(str(demo)), load_rules(ROOT / "rules.yaml"))
    env = {**os.environ, "ECOUTE_DB": str(demo), "ECOUTE_RULES": str(ROOT / "rules.yaml")}
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                             *map(str, notebooks)], cwd=ROOT / "notebooks", capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

"""Every notebook runs top to bottom on the bundled demo data."""
import subprocess
import sys

from tests.conftest import ROOT


def test_notebooks_execute():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                             *map(str, notebooks)], cwd=ROOT / "notebooks", capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

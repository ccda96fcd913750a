"""The house rules of the layout: the pipeline knows no screen (only ui/ and dashboard.py import streamlit)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):     # imports inside functions count too
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_under_pipeline_imports_streamlit():
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "pipeline").rglob("*.py"))
                 if any(name == "streamlit" or name.startswith("streamlit.") for name in imported_modules(path))]
    assert offenders == [], f"screen code belongs in ui/, not pipeline/: {offenders}"


def test_the_dashboard_pages_live_in_ui():
    assert (ROOT / "ui" / "common.py").exists() and not (ROOT / "pipeline" / "ui_common.py").exists()
    assert "streamlit" in imported_modules(ROOT / "ui" / "queue.py")

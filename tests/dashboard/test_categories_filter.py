"""The dashboard's category filters offer the rules' own categories (issue 18), not only the built-in list."""
from streamlit.testing.v1 import AppTest

import yaml

from pipeline.rules import CATEGORIES
from tests.conftest import ROOT, rules_without_desk

AEROLIA_CATEGORIES = [
    {"name": "luggage", "description": "bags lost, delayed or damaged",
     "examples": ["my suitcase never arrived", "valise cassée à l'arrivée"]},
    {"name": "delays", "description": "late or cancelled flights",
     "examples": ["flight delayed 5 hours", "vol annulé sans prévenir"]},
]


def test_the_queue_and_trends_filters_offer_the_rules_categories(filled_db, tmp_path, monkeypatch):
    data = yaml.safe_load(rules_without_desk())   # Aerolia gets two categories of its own, Lumelle none
    data["brands"][0]["categories"] = AEROLIA_CATEGORIES
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("ECOUTE_RULES", str(rules))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert not at.exception
    offered = at.selectbox(key="queue_category").options
    assert offered[:4] == ["All", "luggage", "delays", "other"]        # Aerolia's own, and what fits none of them
    assert set(CATEGORIES) <= set(offered)                             # Lumelle has none: the built-in list

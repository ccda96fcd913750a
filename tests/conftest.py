"""Shared fixtures: a temp store, the project's rules, a tiny encoder built on the spot."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ECOUTE_DB", raising=False)
    monkeypatch.delenv("ECOUTE_RULES", raising=False)


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture
def rules_file() -> Path:
    return ROOT / "rules.yaml"


@pytest.fixture
def rules(rules_file):
    from pipeline.rules import load_rules

    return load_rules(rules_file)


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "test.db")


PG_URL = os.environ.get("ECOUTE_TEST_PG")   # set by .ci/run from .ci/postgres.sh
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason="no PostgreSQL: export ECOUTE_TEST_PG=$(.ci/postgres.sh)"))]


def fresh_database(backend: str, tmp_path: Path) -> str:
    """A new empty store URL: a SQLite file, or a new database on the test PostgreSQL cluster."""
    if backend == "sqlite":
        return str(tmp_path / "test.db")
    import sqlalchemy as sa

    name = f"ecoute_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False))


@pytest.fixture(params=BACKENDS)
def backend_db(request, tmp_path) -> str:
    """Run the test on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too."""
    return fresh_database(request.param, tmp_path)


@pytest.fixture
def store(db):
    from pipeline.store import Store

    return Store(db)


def rules_without_desk() -> str:
    """The project's rules.yaml as YAML text without its own categories, teams, automations, assignment and
    escalation (templates keep their names, their categories only where built in): a base that tests add a desk of
    their own to."""
    import yaml

    from pipeline.rules import CATEGORIES

    data = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    for key in ("categories", "teams", "automations"):
        data.pop(key, None)
    for brand in data["brands"]:
        brand.pop("categories", None)
    for key in ("assignment", "max_open_per_agent", "escalation"):
        data.get("queue", {}).pop(key, None)
    for template in data.get("templates", []):
        if template.get("category") not in (None, *CATEGORIES):
            template.pop("category")   # the brand's own category: the template stays, for any category
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A 2-layer BERT with a word-level vocabulary, saved the way a hub model is."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = ("late delayed refund never again terrible rude lost bag thanks love great merci nul retard "
             "remboursement super génial bonjour vol flight crème order commande aerolia lumelle the my is "
             "a of to and was not why where when ? ! . ,").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(words)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder

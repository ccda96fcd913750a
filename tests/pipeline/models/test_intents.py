"""Intent, complaint category and severity: what an agent reads on the queue and in `ecoute classify`."""
import json

import pytest
import sqlalchemy as sa

from pipeline.models.intents import CATEGORIES, SEVERITIES, TRAINING_FILE, load_extra_heads, read_training_set
from pipeline.mention import Mention
from pipeline.stages import Context, label, load_models
from tests.conftest import ROOT, rules_without_desk, write_jsonl


@pytest.fixture(scope="module")
def ctx():
    from pipeline.rules import parse_rules

    rules = parse_rules(rules_without_desk())   # the built-in categories: the demo's brands have their own
    return Context(rules, load_models(rules))


def builtin_rules(folder, **models) -> str:
    """A rules file with the built-in categories (and `models` settings), written in `folder`."""
    import yaml

    data = yaml.safe_load(rules_without_desk())
    data.setdefault("models", {}).update(models)
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def m(i, text, **extra) -> Mention:
    return Mention(source="twitter", source_id=str(i), text=text, **extra)


def test_complaints_get_a_category_and_a_severity_and_other_posts_none(ctx):
    refund, angry, parcel, app, question, praise = label([
        m(1, "@aerolia you charged my card twice for the same ticket. I want my money back"),
        m(6, "@aerolia you charged my card twice for the same ticket and still no refund after 3 weeks. "
             "This is theft, I'm going to small claims court"),
        m(2, "Mon colis Lumelle est arrivé écrasé, le flacon fuit partout dans le carton"),
        m(3, "The Aerolia app crashes every time I try to check in, error 500 on the website too"),
        m(4, "Does Lumelle ship to Canada?"),
        m(5, "Thank you @aerolia, lovely crew and we landed early. Great flight!"),
    ], ctx)
    assert (refund.intent, refund.category) == ("complaint", "billing_refund")
    assert angry.intent == "complaint" and angry.severity in ("accusation", "blame")
    assert parcel.intent == "complaint" and parcel.category in ("delivery", "product_quality")
    assert (app.intent, app.category) == ("complaint", "app_website")
    for complaint in (refund, parcel, app):
        assert complaint.severity in SEVERITIES and complaint.category in CATEGORIES
    assert (question.intent, question.category, question.severity) == ("question", None, None)
    assert (praise.intent, praise.category, praise.severity) == ("praise", None, None)
    assert f"severity {angry.severity}" in angry.reasons


def test_classify_output_carries_category_and_severity(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": "@aerolia flight cancelled 2 hours before departure and no rebooking. Unacceptable."},
        {"id": "b", "text": "Lumelle annonce l'ouverture d'une boutique à Lyon"},
    ])
    result = CliRunner().invoke(main, ["classify", str(src), "-o", str(tmp_path / "out.jsonl"),
                                       "--rules", builtin_rules(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (rows[0]["intent"], rows[0]["category"]) == ("complaint", "delays_cancellation")
    assert rows[0]["severity"] in SEVERITIES
    assert rows[1]["category"] is None and rows[1]["severity"] is None and "category" in rows[1]


def test_category_and_severity_are_stored_and_old_stores_are_migrated(tmp_path, ctx):
    from pipeline.store import Store

    db = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # a store written before category and severity existed
        conn.execute(sa.text("CREATE TABLE schema_migrations (name VARCHAR(120) PRIMARY KEY, applied_at DATETIME)"))
    import pipeline.store as S

    old_classifications = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                           for c in S.classifications.c if c.name not in ("category", "severity")]
    with engine.begin() as conn:
        S.metadata.create_all(conn, tables=[S.mentions])
        sa.Table("classifications", sa.MetaData(), *old_classifications).create(conn)
        for name in ("0001_initial", "0002_source_health"):
            conn.execute(sa.text("INSERT INTO schema_migrations VALUES (:n, CURRENT_TIMESTAMP)"), {"n": name})
        S.metadata.create_all(conn, tables=[S.queue_items, S.cursors, S.audit_log, S.source_health])
    store = Store(str(db))
    mention = m(9, "@aerolia lost my bag and nobody answers the phone, third week now")
    store.save_mentions([mention])
    store.save_labels(label([mention], ctx), sla=3600)
    row = store.mention_rows().iloc[0]
    assert row["category"] in CATEGORIES and row["severity"] in SEVERITIES
    item = store.queue().iloc[0]
    assert item["category"] == row["category"]


def test_shipped_heads_hold_their_score_on_the_labelled_set(ctx):
    """tests/data/labelled_mentions.jsonl, scored once on 2026-11-25: intent 81.9, category 83.6, severity 74.3."""
    from pipeline.bench.evaluate_labels import evaluate

    report = evaluate(ctx.rules, ctx=ctx)
    assert report["intent"]["macro_f1"] >= 79
    assert report["category"]["macro_f1"] >= 80
    assert report["severity"]["macro_f1"] >= 70
    assert set(report["category"]["per_class"]) == set(CATEGORIES)


def test_train_intents_writes_heads_the_pipeline_then_uses(tmp_path):
    """The command retrains on a training file and `models.intent_heads` points the pipeline at the result."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.rules import load_rules

    rows = read_training_set(TRAINING_FILE)
    small = write_jsonl(tmp_path / "small.jsonl", rows[::6])
    out = tmp_path / "my-heads"
    result = CliRunner().invoke(main, ["train-intents", "--data", str(small), "--out", str(out),
                                       "--rules", builtin_rules(tmp_path), "--c", "2", "--cue-weight", "1"])
    assert result.exit_code == 0, result.output
    assert "intent: C 2.0" in result.output and "cue_weight 1.0" in result.output and "cv_macro_f1" in result.output
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["intent"]["n"] == len(rows[::6])
    rules = load_rules(builtin_rules(tmp_path, intent_heads=str(out)))
    models = load_models(rules)
    assert models.intents.directory == out and models.intents_encoder is None  # same encoder: one pass
    (complaint,) = label([m(1, "@aerolia my flight was cancelled and nobody refunds me")], Context(rules, models))
    assert complaint.intent == "complaint" and complaint.category in CATEGORIES


def test_missing_intent_heads_are_named():
    with pytest.raises(FileNotFoundError, match="ecoute train-intents|card"):
        load_extra_heads(ROOT / "tests")

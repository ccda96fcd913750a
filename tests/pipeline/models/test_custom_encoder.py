"""Any Hugging Face model id or local path works as the encoder, once heads are trained for it."""
import json

import pytest

from pipeline.models.heads import HeadsMismatch, load_heads
from pipeline.jobs import classify_mentions
from pipeline.mention import Mention
from pipeline.rules import parse_rules
from pipeline.stages import load_models
from pipeline.models.train import train

NEG = ["my flight was late again", "refund never came, terrible", "rude staff and lost bag",
       "vol en retard, nul", "toujours pas de remboursement", "delayed and lost my bag"]
NEU = ["the flight is at noon", "bonjour, vol demain", "my order is a crème", "where is the flight",
       "la commande est là", "flight of the day"]
POS = ["thanks, great flight", "love the crème", "merci, super vol", "génial, merci", "great crew thanks",
       "love it, great"]


def make_data(root):
    """A miniature of ../shared/data in the same formats."""
    for lang in ("english", "french"):
        folder = root / "umsab" / lang
        folder.mkdir(parents=True)
        for split in ("train", "val", "test"):
            texts = NEG + NEU + POS
            (folder / f"{split}_text.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
            (folder / f"{split}_labels.txt").write_text("\n".join(["0"] * 6 + ["1"] * 6 + ["2"] * 6) + "\n")
    (root / "complaints").mkdir()
    rows = [(f"c{i}", t, 1) for i, t in enumerate(NEG)] + [(f"n{i}", t, 0) for i, t in enumerate(NEU + POS)]
    (root / "complaints" / "complaints-data.csv").write_text(
        "".join(f'{i},"{t}",{y},air\n' for i, t, y in rows), encoding="utf-8")
    (root / "complaints" / "split.csv").write_text("id,split\n" + "".join(
        f"{i},{s}\n" for n, (i, _, _) in enumerate(rows) for s in [("train", "val", "test")[n % 3]]),
        encoding="utf-8")
    return root


def test_a_local_model_trains_heads_and_classifies(tmp_path, tiny_encoder):
    heads_dir = tmp_path / "heads"
    card = train(make_data(tmp_path / "data"), str(tiny_encoder), heads_dir, max_length=32, finetune_epochs=4)
    assert card["encoder"] == str(tiny_encoder) and card["dim"] == 32
    assert json.loads((heads_dir / "card.json").read_text())["tasks"] == ["complaint", "sentiment"]
    rules = parse_rules(f"brands:\n  - name: Aerolia\n    keywords: [aerolia]\n"
                        f"models:\n  encoder: {tiny_encoder}\n  heads: {heads_dir}\n")
    out = list(classify_mentions([Mention("file", "1", "aerolia flight late, terrible, refund never came"),
                                  Mention("file", "2", "merci aerolia, super vol, great crew")], rules))
    assert [o.sentiment for o in out] == ["negative", "positive"]
    assert all(0 <= o.complaint_score <= 1 for o in out)
    assert {"val_with_ngrams", "val_without_ngrams"} <= set(card["metrics"]["complaint"])   # the choice is on record
    assert f"+{tiny_encoder}+" in out[0].model   # the heads, the encoder, then the intent heads
    assert out[0].intent in ("complaint", "question", "praise", "other")


def test_the_pipeline_runs_the_backend_the_heads_learned_unless_rules_name_another(tmp_path, tiny_encoder):
    heads_dir = tmp_path / "heads"
    card = train(make_data(tmp_path / "data"), str(tiny_encoder), heads_dir, max_length=32, finetune_epochs=0)
    assert card["backend"] == "onnx-int8"   # the default: heads learn the int8 graph's embeddings
    base = (f"brands:\n  - name: Aerolia\n    keywords: [aerolia]\n"
            f"models:\n  encoder: {tiny_encoder}\n  heads: {heads_dir}\n  max_length: 32\n")
    assert load_models(parse_rules(base)).encoder.backend == "onnx-int8"
    assert load_models(parse_rules(base + "  backend: onnx\n")).encoder.backend == "onnx"


def test_heads_for_another_encoder_are_refused_with_a_hint(tmp_path, tiny_encoder):
    with pytest.raises(HeadsMismatch, match="ecoute train --encoder"):
        load_heads(None, encoder=str(tiny_encoder))


def test_training_reads_the_shared_data(tmp_path, tiny_encoder, shared):
    card = train(shared / "data", str(tiny_encoder), tmp_path / "heads", max_length=32, limit=60)
    assert set(card["metrics"]) == {"sentiment", "complaint", "irony", "emotion"}
    assert {f"test_macro_f1_{lang}" for lang in ("en", "fr", "de", "es", "it", "pt", "ar", "hi")} <= set(
        card["metrics"]["sentiment"])
    assert card["languages"]["sentiment"] == ["ar", "de", "en", "es", "fr", "hi", "it", "pt"]

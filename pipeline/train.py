"""Retrain the shipped heads from ../shared/data: `ecoute train`.

Sentiment is trained on UMSAB English and French together (train split), the complaint head on
the ACL 2019 complaints data (train rows of the fixed split.csv). The regularisation strength is
picked on the val splits only; the test splits are scored once, at the end, for the model card.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from . import heads as H
from .encoder import Encoder, resolve_encoder
from .finetune import finetune, macro_f1, positive_f1
from .text import normalise

log = logging.getLogger(__name__)
SENTIMENT_CLASSES = ("negative", "neutral", "positive")
COMPLAINT_CLASSES = ("no", "yes")
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
ADAPTER = "adapter"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray
    lang: list[str]


def read_umsab(data: Path, split: str, limit: int | None = None) -> Split:
    texts, labels, langs = [], [], []
    for lang, folder in (("en", "english"), ("fr", "french")):
        base = data / "umsab" / folder
        lines = (base / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
        values = (base / f"{split}_labels.txt").read_text(encoding="utf-8").split()
        if len(lines) != len(values):
            raise ValueError(f"{base}: {split}_text.txt has {len(lines)} lines, {split}_labels.txt {len(values)}")
        lines, values = lines[:limit], values[:limit]
        texts += lines
        labels += [int(v) for v in values]
        langs += [lang] * len(lines)
    return Split(texts, np.array(labels), langs)


def read_complaints(data: Path, split: str, limit: int | None = None) -> Split:
    base = data / "complaints"
    rows = pd.read_csv(base / "complaints-data.csv", header=None, names=["id", "text", "label", "domain"],
                       dtype={"id": str})
    splits = pd.read_csv(base / "split.csv", dtype={"id": str})
    rows = rows.merge(splits, on="id", how="inner")
    part = rows[rows["split"] == split].head(limit) if limit else rows[rows["split"] == split]
    return Split(part["text"].astype(str).tolist(), part["label"].to_numpy(dtype=int), ["en"] * len(part))


def _fit(x_train, y_train, x_val, y_val, positive_f1: bool) -> tuple[LogisticRegression, float, float]:
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        model.fit(x_train, y_train)
        pred = model.predict(x_val)
        score = f1_score(y_val, pred, average="binary" if positive_f1 else "macro")
        log.info("  C=%s val %s %.3f", c, "F1(complaint)" if positive_f1 else "macro-F1", score)
        if best is None or score > best[1]:
            best = (model, score, c)
    return best


def train(data: Path = DEFAULT_DATA, encoder_name: str = "embedded", out: Path = H.HEADS_DIR,
          max_length: int = 128, limit: int | None = None, finetune_epochs: int = 4) -> dict:
    """Fine-tune an adapter (unless finetune_epochs is 0), train both heads, write them with a model card."""
    started = time.time()
    sets = {
        "sentiment": {s: read_umsab(data, s, limit) for s in ("train", "val", "test")},
        "complaint": {s: read_complaints(data, s, limit) for s in ("train", "val", "test")},
    }
    clean = {t: {s: [normalise(x) for x in part.texts] for s, part in d.items()} for t, d in sets.items()}
    adapter, tuning = None, None
    if finetune_epochs > 0:
        log.info("fine-tuning a LoRA adapter on sentiment and complaints (%d epochs)", finetune_epochs)
        location = resolve_encoder(encoder_name)
        tasks = {
            "sentiment": {"train": (clean["sentiment"]["train"], sets["sentiment"]["train"].labels),
                          "val": (clean["sentiment"]["val"], sets["sentiment"]["val"].labels),
                          "classes": 3, "score": macro_f1},
            "complaint": {"train": (clean["complaint"]["train"], sets["complaint"]["train"].labels),
                          "val": (clean["complaint"]["val"], sets["complaint"]["val"].labels),
                          "classes": 2, "score": positive_f1},
        }
        adapter = out / ADAPTER
        tuning = finetune(location, tasks, adapter, epochs=finetune_epochs,
                          local_only=Path(location).exists() or os.environ.get("HF_HUB_OFFLINE") == "1")
    encoder = Encoder(encoder_name, max_length, adapter=adapter, backend="onnx")
    log.info("encoding %d texts with %s", sum(len(v) for d in clean.values() for v in d.values()), encoder_name)
    emb = {t: {s: encoder.encode(v) for s, v in d.items()} for t, d in clean.items()}
    idf = H.fit_idf(H.ngram_counts(clean["sentiment"]["train"] + clean["complaint"]["train"]))
    x = {t: {s: H.features(emb[t][s], clean[t][s], idf) for s in d} for t, d in clean.items()}
    trained, metrics = {}, {}
    for task, classes in (("sentiment", SENTIMENT_CLASSES), ("complaint", COMPLAINT_CLASSES)):
        log.info("training %s head", task)
        binary = task == "complaint"
        model, val_score, c = _fit(x[task]["train"], sets[task]["train"].labels,
                                   x[task]["val"], sets[task]["val"].labels, binary)
        trained[task] = H.Head(task, classes, model.coef_.astype(np.float32), model.intercept_.astype(np.float32))
        metrics[task] = {"C": c, "val": round(100 * val_score, 1),
                         **_test_scores(task, model, x[task]["test"], sets[task]["test"])}
    card = {
        "model": "minilm-lora-ngram-logreg.v2" if adapter else "minilm-ngram-logreg.v1",
        "adapter": ADAPTER if adapter else None,
        "finetune": tuning,
        "data": {"sentiment": "UMSAB english+french train (val for C)",
                 "complaint": "complaints-data.csv train rows of split.csv (val for C)"},
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
        "limits": "Encoder with one multi-task LoRA adapter and linear heads; English encoder vocabulary, "
                  "French carried mostly by character n-grams; trained on tweets, weaker on long articles; "
                  "complaint data is English only.",
    }
    return H.save_heads(out, encoder_name, encoder.dim, idf, trained, card)


def _test_scores(task: str, model, x_test, test: Split) -> dict:
    pred = model.predict(x_test)
    if task == "complaint":
        return {"test_f1_complaint": round(100 * f1_score(test.labels, pred), 1),
                "test_macro_f1": round(100 * f1_score(test.labels, pred, average="macro"), 1)}
    langs = np.array(test.lang)
    return {f"test_macro_f1_{lang}": round(100 * f1_score(test.labels[langs == lang], pred[langs == lang],
                                                          average="macro"), 1)
            for lang in sorted(set(test.lang))}

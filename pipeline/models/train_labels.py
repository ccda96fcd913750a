"""`ecoute train-intents`: train the intent, complaint category and severity heads.

Data: pipeline/models/data/intent_category_severity.jsonl, written for this project (see its README);
never tests/data/labelled_mentions.jsonl, which only measures (`pipeline/bench/evaluate_labels.py`).
C and the weight of the cue flags are picked by grouped 5-fold cross-validation on the training
set, then each head is refit on all of it. Translation pairs (the same scenario in English and
French) share brand, intent and category, so folds keep each such group whole: a French post is
never scored by a head that saw its English twin.

The heads read the embedding of the pipeline's encoder as configured in rules.yaml (with the
adapter of the configured heads, if any); the adapter is copied next to them so they stay usable
when those heads are retrained.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold

from pipeline.models import heads as H
from pipeline.models.intents import (CUE_NAMES, EXTRA_HEADS_DIR, EXTRA_TASKS, TRAINING_FILE, adapter_fingerprint,
                                     extra_inputs, read_training_set)
from pipeline.mention import Mention
from pipeline.rules import Rules
from pipeline.stages import STAGES, Context, load_models, reading_limits, run_stages

log = logging.getLogger(__name__)
C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CUE_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
FOLDS = 5
BRAND = re.compile(r"[A-ZÉ][\w\-é]+(?: (?:Air|Rail|Mobile|Motors|Azur|Mistral))?")
ADAPTER = "adapter"


def encode(rows: list[dict], ctx: Context) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clean texts, embeddings and complaint scores, exactly as the pipeline computes them."""
    stages = tuple(s for s in STAGES if s.name in ("normalise_text", "classify"))
    batch = run_stages([Mention("train", r["id"], r["text"]) for r in rows], ctx, stages)
    texts = [t or " " for t in batch["clean_text"]]
    if "embedding" in batch:
        embeddings = np.stack(batch["embedding"])
    else:
        embeddings = ctx.models.encoder.encode(texts, ctx.models.batch_size)
    return texts, embeddings, np.asarray(batch["complaint_score"], dtype=np.float32)


def groups(rows: list[dict]) -> np.ndarray:
    """One group per (intent, category, first brand named): translation pairs stay together."""
    keys = [(r["intent"], r["category"], (BRAND.findall(r["text"]) or ["?"])[0].lower()) for r in rows]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.array([index[k] for k in keys])


def _fit(x, y, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, y)


def cross_validate(x_base, extras: dict[float, sparse.csr_matrix], y: np.ndarray, group: np.ndarray,
                   langs: np.ndarray, c_grid: tuple[float, ...] = C_GRID) -> dict:
    """Grouped k-fold macro-F1 for each (C, cue weight); the best, with its out-of-fold predictions."""
    folds = list(GroupKFold(n_splits=FOLDS).split(x_base, y, group))
    best = None
    for weight, extra in extras.items():
        x = sparse.hstack([x_base, extra], format="csr")
        for c in c_grid:
            predicted = np.empty(len(y), dtype=object)
            for train, test in folds:
                predicted[test] = _fit(x[train], y[train], c).predict(x[test])
            score = f1_score(y, predicted, average="macro")
            log.info("  C=%s cue weight=%s: macro-F1 %.1f", c, weight, 100 * score)
            if best is None or score > best["macro_f1"] + 1e-9:
                best = {"C": c, "cue_weight": weight, "macro_f1": score, "predicted": predicted}
    best["per_lang"] = {lang: round(100 * f1_score(y[langs == lang], best["predicted"][langs == lang],
                                                   average="macro"), 1) for lang in ("en", "fr")}
    best["per_class"] = dict(zip(sorted(set(y)), np.round(100 * f1_score(y, best["predicted"], average=None,
                                                                         labels=sorted(set(y))), 1).tolist()))
    return best


def train(rules: Rules, data: Path = TRAINING_FILE, out: Path = EXTRA_HEADS_DIR,
          c_grid: tuple[float, ...] = C_GRID, cue_weights: tuple[float, ...] = CUE_WEIGHTS) -> dict:
    """Cross-validate, fit the three heads on the whole training set, write them with a card.

    The search covers every C in `c_grid` and cue weight in `cue_weights` (the shipped heads: the
    full default grids); narrowing them trades a little quality for a much faster run."""
    started = time.time()
    rows = read_training_set(data)
    ctx = Context(rules, load_models(rules))
    texts, embeddings, complaint_scores = encode(rows, ctx)
    idf = H.fit_idf(H.ngram_counts(texts))
    x_base = H.features(embeddings, texts, idf)
    extras = {w: extra_inputs(texts, complaint_scores, w) for w in cue_weights}
    langs = np.array([r["lang"] for r in rows])
    group = groups(rows)
    trained, metrics = {}, {}
    for task, classes in EXTRA_TASKS.items():
        keep = np.array([r[task] is not None for r in rows])
        y = np.array([r[task] for r in rows], dtype=object)[keep]
        log.info("%s: %d posts, %d-fold grouped cross-validation", task, int(keep.sum()), FOLDS)
        best = cross_validate(x_base[keep], {w: e[keep] for w, e in extras.items()}, y, group[keep], langs[keep],
                              c_grid)
        metrics[task] = {"C": best["C"], "cue_weight": best["cue_weight"], "n": int(keep.sum()),
                         "cv_macro_f1": round(100 * best["macro_f1"], 1),
                         **{f"cv_macro_f1_{k}": v for k, v in best["per_lang"].items()},
                         "cv_f1_per_class": best["per_class"]}
        x = sparse.hstack([x_base, extras[best["cue_weight"]]], format="csr")[keep]
        model = _fit(x, y, best["C"])
        order = [list(model.classes_).index(c) for c in classes]
        trained[task] = H.Head(task, classes, model.coef_[order], model.intercept_[order])
    return _save(out, ctx, idf, trained, metrics, data, len(rows), started)


def _save(out: Path, ctx: Context, idf, trained: dict, metrics: dict, data: Path, n: int, started: float) -> dict:
    encoder = ctx.models.encoder
    adapter = getattr(encoder, "adapter", None)
    if adapter:
        shutil.rmtree(out / ADAPTER, ignore_errors=True)
        shutil.copytree(adapter, out / ADAPTER)
    card = {
        "model": f"{'e5' if getattr(encoder, 'prefix', '') else 'encoder'}-ngram-cues-logreg.v2",
        "adapter": ADAPTER if adapter else None,
        "adapter_sha": adapter_fingerprint(adapter),
        "backend": encoder.backend,   # the embeddings they learned: the pipeline's, as configured when trained
        "cue_weights": {task: scores["cue_weight"] for task, scores in metrics.items()},
        "cues": ["complaint_score", *CUE_NAMES],
        "data": f"{data.name}: {n} EN/FR posts written for this project (pipeline/models/data/README.md)",
        "metrics": metrics,
        "seconds": round(time.time() - started, 1),
        "limits": "Trained on a few hundred synthetic posts by one author; category and severity only mean "
                  "something for complaints; severity follows Jin & Aletras (2020); English and French only. "
                  + reading_limits(encoder.max_length),
    }
    return H.save_heads(out, encoder.name, encoder.dim, idf, trained, card)


def main(argv: list[str] | None = None) -> None:
    """`python -m pipeline.models.train_labels [RULES]`: the same as `ecoute train-intents`."""
    import sys

    from pipeline.rules import load_rules

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    card = train(load_rules(args[0] if args else None))
    for task, scores in card["metrics"].items():
        print(f"{task}: " + ", ".join(f"{k} {v}" for k, v in scores.items()))


if __name__ == "__main__":
    main()

"""Intent, complaint category and severity measured on the hand-labelled set in tests/data.

`tests/data/labelled_mentions.jsonl` (364 EN/FR posts, see its README) is only ever read here: the
heads learn from pipeline/models/data, and nothing is tuned on this set. Intent is scored on every post;
category and severity on the posts labelled as complaints, so a head is judged on the posts it is
meant for (end to end, a complaint the pipeline misses gets neither). Run with
`python -m pipeline.bench.evaluate_labels`, or as part of `ecoute bench`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from pipeline.models.intents import EXTRA_TASKS
from pipeline.mention import Mention
from pipeline.rules import Rules
from pipeline.stages import STAGES, Context, _intent_embeddings, load_models, run_stages

EVALUATION_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "labelled_mentions.jsonl"


def read_set(path: Path = EVALUATION_FILE) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predict(rows: list[dict], ctx: Context) -> dict[str, list[str]]:
    """Each head's label for every post (category and severity too, whatever the intent)."""
    heads = ctx.models.intents
    if heads is None:
        raise ValueError("no intent heads loaded (models.intent_heads)")
    stages = tuple(s for s in STAGES if s.name in ("normalise_text", "classify"))
    batch = run_stages([Mention("eval", r["id"], r["text"], lang=r.get("lang")) for r in rows], ctx, stages)
    texts = [t or " " for t in batch["clean_text"]]
    base = heads.base_inputs(_intent_embeddings(batch, ctx.models, texts), texts)
    scores = np.asarray(batch["complaint_score"], dtype=np.float32)
    return {task: heads.predict(task, base, texts, scores)[0] for task in EXTRA_TASKS}


def per_class(gold: list[str], predicted: list[str], classes: tuple[str, ...]) -> dict:
    p, r, f, n = precision_recall_fscore_support(gold, predicted, labels=list(classes), zero_division=0)
    return {c: {"precision": round(100 * p[i], 1), "recall": round(100 * r[i], 1), "f1": round(100 * f[i], 1),
                "support": int(n[i])} for i, c in enumerate(classes)}


def evaluate(rules: Rules, path: Path = EVALUATION_FILE, ctx: Context | None = None) -> dict:
    rows = read_set(path)
    predicted = predict(rows, ctx or Context(rules, load_models(rules)))
    report = {}
    for task, classes in EXTRA_TASKS.items():
        keep = [i for i, r in enumerate(rows) if r.get(task) is not None]
        gold = [rows[i][task] for i in keep]
        guess = [predicted[task][i] for i in keep]
        langs = np.array([rows[i]["lang"] for i in keep])
        present = tuple(c for c in classes if c in gold)
        report[task] = {
            "n": len(keep),
            "macro_f1": round(100 * f1_score(gold, guess, labels=list(present), average="macro", zero_division=0), 1),
            **{f"macro_f1_{lang}": round(100 * f1_score([g for g, l in zip(gold, langs) if l == lang],
                                                        [p for p, l in zip(guess, langs) if l == lang],
                                                        labels=list(present), average="macro", zero_division=0), 1)
               for lang in ("en", "fr")},
            "per_class": per_class(gold, guess, present),
        }
    return report


def print_report(report: dict, echo: Callable[[str], None] = print) -> None:
    for task, scores in report.items():
        echo(f"  {task:<9} macro-F1 {scores['macro_f1']:.1f} (EN {scores['macro_f1_en']:.1f} · "
             f"FR {scores['macro_f1_fr']:.1f}) on {scores['n']} posts")
        for name, s in scores["per_class"].items():
            echo(f"    {name:<22} P {s['precision']:5.1f}  R {s['recall']:5.1f}  F1 {s['f1']:5.1f}  "
                 f"({s['support']})")


def main() -> None:
    from pipeline.rules import load_rules

    report = evaluate(load_rules())
    print_report(report)
    print(json.dumps({task: scores["macro_f1"] for task, scores in report.items()}))


if __name__ == "__main__":
    main()

"""Per-kind precision and recall of the transparency detector on a labelled set.

`python -m pipeline.bench.evaluate_transparency [SET.jsonl] [--rules rules.yaml]` prints one line per risk
kind and, last, a JSON object with the same numbers. The set is read as one batch, so coordinated
groups inside it can be found. Lines need `id`, `text`, `expected` (a list of kinds) and may carry
the other columns `find_risks` reads, plus `case` (what the line was written as: a `case` starting
with "promo_disclosed", "affiliate_disclosed" or "owned_blog_disclosed" must get no promotion or
affiliation flag; those flags are counted in `flags_on_disclosed`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.rules import Rules, load_rules
from pipeline.alerts.transparency import KINDS, find_risks

DEFAULT_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "transparency_mentions.jsonl"
DISCLOSED_CASES = ("promo_disclosed", "affiliate_disclosed", "owned_blog_disclosed")


def read_set(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def scores(expected: list[set[str]], found: list[set[str]], kind: str) -> dict:
    tp = sum(1 for e, f in zip(expected, found) if kind in e and kind in f)
    fp = sum(1 for e, f in zip(expected, found) if kind not in e and kind in f)
    fn = sum(1 for e, f in zip(expected, found) if kind in e and kind not in f)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}


def evaluate(path: str | Path, rules: Rules) -> dict:
    """Scores per kind, errors by line id, and flags given to disclosed content."""
    lines = read_set(path)
    risks = find_risks([{**line, "key": line["id"]} for line in lines], rules)
    expected = [set(line["expected"]) for line in lines]
    found = [{r.kind for r in row} for row in risks]
    hidden = {"undisclosed_promotion", "undisclosed_affiliation"}
    return {
        "set": str(path), "mentions": len(lines),
        "kinds": {kind: scores(expected, found, kind) for kind in KINDS},
        "flags_on_disclosed": sum(1 for line, f in zip(lines, found)
                                  if str(line.get("case", "")).startswith(DISCLOSED_CASES) and f & hidden),
        "missed": {line["id"]: sorted(e - f) for line, e, f in zip(lines, expected, found) if e - f},
        "wrong": {line["id"]: sorted(f - e) for line, e, f in zip(lines, expected, found) if f - e},
    }


def report(result: dict) -> str:
    rows = [f"{'kind':<26}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}"]
    rows += [f"{kind:<26}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>9}"
             for kind, s in result["kinds"].items()]
    rows.append(f"{result['mentions']} mentions; flags on disclosed content: {result['flags_on_disclosed']}")
    rows.append(json.dumps({k: result[k] for k in ("mentions", "kinds", "flags_on_disclosed")}, sort_keys=True))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_SET))
    parser.add_argument("--rules", default=None, help="rules.yaml to use (default: $ECOUTE_RULES, else ./rules.yaml)")
    args = parser.parse_args(argv)
    result = evaluate(args.path, load_rules(args.rules))
    print(report(result))
    return result


if __name__ == "__main__":
    main()

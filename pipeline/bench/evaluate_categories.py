"""How well a brand's own categories (rules.yaml, a description and a few examples each) name real complaints.

`python -m pipeline.bench.evaluate_categories --data Tweets.csv [--rules tests/data/airline_categories.yaml]`
reads Twitter US Airline Sentiment (Crowdflower, on Kaggle as "Tweets.csv": 14,640 tweets of Feb. 2015 to
six US airlines, CC BY-NC-SA 4.0; keep it outside the project), takes the negative tweets whose
`negativereason` names a reason (not "Can't Tell"), maps each reason to one of the rules' categories
(`REASONS`) and prints, per category, the share named correctly:
- `own`: the rules' categories over every such tweet (what the issue's target counts);
- `own_confident`: the same on the tweets whose reason all annotators agreed on (confidence 1.0);
- `own_in_pipeline`: through the stages, where only a tweet read as a complaint gets a category;
- `built_in`: the built-in category head on the same tweets, its categories mapped (`BUILT_IN`).
Thresholds were only ever looked at on a random 20% (`--seed`); scores are on the other 80%. Then the
timing: loading 20 categories (cold: nothing cached; warm: a restart), and the milliseconds a mention costs.
The last line is one JSON object with every number.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from pipeline.models.categories import cache_file, category_encoder, category_key, fit_head
from pipeline.mention import Mention
from pipeline.rules import Category, Rules, load_rules
from pipeline.stages import Context, load_models, run_stages
from pipeline.text import normalise

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "tests" / "data" / "airline_categories.yaml"
REASONS = {   # the set's negativereason → the category of tests/data/airline_categories.yaml
    "Late Flight": "delays", "Cancelled Flight": "delays", "Lost Luggage": "luggage", "Damaged Luggage": "luggage",
    "Customer Service Issue": "customer_service", "Flight Booking Problems": "booking",
    "Flight Attendant Complaints": "crew", "Bad Flight": "onboard", "longlines": "queues",
}
BUILT_IN = {   # the built-in categories a reason may fairly get (the built-in list has no luggage nor crew)
    "Late Flight": {"delays_cancellation"}, "Cancelled Flight": {"delays_cancellation"},
    "Lost Luggage": {"delivery"}, "Damaged Luggage": {"delivery", "product_quality"},
    "Customer Service Issue": {"customer_service"}, "Flight Booking Problems": {"billing_refund", "app_website"},
    "Flight Attendant Complaints": {"customer_service"}, "Bad Flight": {"product_quality", "safety"},
    "longlines": {"customer_service", "delays_cancellation"},
}
DEV_SHARE = 0.2


def read_tweets(path: str | Path) -> list[dict]:
    """The negative tweets with a clear reason, as dicts with `text`, `reason`, `confidence`."""
    with open(path, encoding="utf-8", newline="") as handle:
        return [{"text": row["text"], "reason": row["negativereason"],
                 "confidence": float(row.get("negativereason_confidence") or 0)}
                for row in csv.DictReader(handle)
                if row["airline_sentiment"] == "negative" and row["negativereason"] in REASONS]


def split(tweets: list[dict], seed: int) -> tuple[list[int], list[int]]:
    """(dev, test) row numbers: a random DEV_SHARE to look at, the rest to report."""
    order = list(range(len(tweets)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * DEV_SHARE)
    return sorted(order[:cut]), sorted(order[cut:])


def accuracy(expected: list[set[str]], named: list[str | None], rows: list[int], groups: list[str]) -> dict:
    """Share named correctly per group (a category) and in all, over `rows`."""
    out: dict[str, dict] = {}
    for group in dict.fromkeys(groups[i] for i in rows):
        mine = [i for i in rows if groups[i] == group]
        out[group] = {"accuracy": round(sum(named[i] in expected[i] for i in mine) / len(mine), 3), "n": len(mine)}
    right = sum(named[i] in expected[i] for i in rows)
    out["all"] = {"accuracy": round(right / max(len(rows), 1), 3), "n": len(rows),
                  "mean_per_category": round(float(np.mean([v["accuracy"] for k, v in out.items() if k != "all"])), 3)}
    return out


def brand_with_categories(rules: Rules) -> str:
    brand = next((b.name for b in rules.brands if rules.categories_for(b.name)), None)
    if brand is None:
        raise SystemExit("the rules give no categories (neither `categories` nor a brand's own)")
    return brand


def label_tweets(texts: list[str], brand: str, rules: Rules, models) -> list[dict]:
    """The stages' rows for each tweet, about `brand` (its name leads the text, as a mention would)."""
    mentions = [Mention("eval", str(i), f"@{brand} {text}") for i, text in enumerate(texts)]
    out = []
    for start in range(0, len(mentions), 256):
        batch = run_stages(mentions[start:start + 256], Context(rules, models))
        out += [{"intent": i, "category": c} for i, c in zip(batch["intent"], batch["category"])]
    return out


def load_timing(rules: Rules, encoder, count: int = 20) -> dict:
    """Seconds to fit `count` categories (the rules' own, repeated under new names to make up the number):
    cold (no cache file), then warm (a restart: the file is there, the process has nothing)."""
    base = rules.categories_for(brand_with_categories(rules))
    made = [Category(name=f"{c.name}_{i}", description=c.description, examples=[f"{e} ({i})" for e in c.examples])
            for i in range(count // len(base) + 1) for c in base][:count]
    key = category_key(made)
    cache_file(key, encoder).unlink(missing_ok=True)
    timings = {}
    for state in ("cold", "warm"):
        fit_head.cache_clear()
        start = time.perf_counter()
        fit_head(key, encoder)
        timings[f"load_{count}_{state}_s"] = round(time.perf_counter() - start, 3)
    return timings


def mention_timing(head, embeddings: np.ndarray, encoder, texts: list[str]) -> dict:
    """Milliseconds per mention: naming a category from an embedding already computed, and encoding a
    complaint for the categories when the pipeline's encoder has an adapter (`category_encoder`): the bare top
    layers over the states `classify` kept when the adapter shares the lower layers, else a whole second pass."""
    start = time.perf_counter()
    for _ in range(5):
        head.predict(embeddings)
    naming = (time.perf_counter() - start) / 5 / len(embeddings) * 1000
    sample = texts[:512]
    if hasattr(encoder, "topic_vectors"):   # the shared states come with classify's own pass: not timed
        _, states = encoder.adapted.encode_sharing(sample)
        start = time.perf_counter()
        encoder.topic_vectors(states)
    else:
        start = time.perf_counter()
        encoder.encode(sample)
    encoding = (time.perf_counter() - start) / len(sample) * 1000
    return {"ms_per_mention_naming": round(naming, 4), "ms_per_complaint_encoding": round(encoding, 2)}


def evaluate(data: str | Path, rules: Rules, seed: int = 18) -> dict:
    tweets = read_tweets(data)
    dev, test = split(tweets, seed)
    brand = brand_with_categories(rules)
    models = load_models(rules)
    start = time.perf_counter()
    encoder = category_encoder(models.encoder)
    encoder_load = time.perf_counter() - start
    texts = [normalise(t["text"]) or " " for t in tweets]
    embeddings = encoder.encode(texts, models.batch_size)
    head = fit_head(category_key(rules.categories_for(brand)), encoder)
    own = head.predict(embeddings)
    groups = [REASONS[t["reason"]] for t in tweets]
    expected = [{g} for g in groups]
    confident = [i for i in test if tweets[i]["confidence"] >= 1.0]
    no_categories = rules.model_copy(update={"categories": [], "brands": [
        b.model_copy(update={"categories": None}) for b in rules.brands]})
    staged = label_tweets([t["text"] for t in tweets], brand, no_categories, models)
    in_pipeline = [name if row["intent"] == "complaint" else None for name, row in zip(own, staged)]
    built_in = [row["category"] for row in staged]
    return {
        "data": str(data), "rules": brand, "tweets": len(tweets), "dev": len(dev), "test": len(test),
        "seed": seed, "floor": round(head.floor, 3), "other_share": round(sum(n == "other" for n in own) / len(own), 3),
        "read_as_complaint": round(sum(r["intent"] == "complaint" for r in staged) / len(staged), 3),
        "own": accuracy(expected, own, test, groups),
        "own_confident": accuracy(expected, own, confident, groups),
        "own_in_pipeline": accuracy(expected, in_pipeline, test, groups),
        "built_in": accuracy([BUILT_IN[t["reason"]] for t in tweets], built_in, test, groups),
        "category_encoder": f"{encoder.name} (adapter: {encoder.adapter or 'none'}, {encoder.backend})",
        "category_encoder_load_s": round(encoder_load, 2),
        **load_timing(rules, encoder), **mention_timing(head, embeddings, encoder, texts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Tweets.csv of Twitter US Airline Sentiment")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rules.yaml with the categories")
    parser.add_argument("--seed", type=int, default=18, help="the random 20%% split that was looked at")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = evaluate(args.data, load_rules(args.rules), args.seed)
    for part in ("own", "own_confident", "own_in_pipeline", "built_in"):
        scores = result[part]
        print(f"{part}: {scores['all']['accuracy']:.1%} of {scores['all']['n']:,} "
              f"(mean per category {scores['all']['mean_per_category']:.1%})")
        for group, value in scores.items():
            if group != "all":
                print(f"  {group:<18} {value['accuracy']:.1%} of {value['n']:,}")
    print(f"load 20 categories: {result['load_20_cold_s']} s cold, {result['load_20_warm_s']} s warm; per mention: "
          f"{result['ms_per_mention_naming']} ms to name, {result['ms_per_complaint_encoding']} ms to encode a "
          f"complaint with {result['category_encoder']}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()

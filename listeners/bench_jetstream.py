"""How many Jetstream events per second the Bluesky listener filters on one core.

`python -m listeners.bench_jetstream [--events N] [--brands B]` builds N synthetic events in
Jetstream's JSON (mostly post creates of 40–300 characters, some non-ASCII, ~1% naming a brand, plus
deletes, identity and account events), then times what the listener does with each message:
`json.loads`, the keyword screen, the brands' exclusions and, for matches, the Mention. No network,
no store. The last line printed is one JSON object. The whole public firehose peaks at a few hundred
posts a second; the target is ten times that, 3000 events/s.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import time

from pipeline.rules import Brand

from .bluesky import Authors, KeywordFilter, _Batch

WORDS = ("the a my flight bag late again today love this why is so good bad never ever airport gate "
         "crew seat delayed cancelled refund help please thanks café été très vraiment merci pour "
         "avec sans bonjour que qui over under new old first last day night week coffee music game").split()
TARGET = 3000


def brands(count: int) -> list[Brand]:
    names = ["Aerolia", "Lumelle", "Skyra", "Nordvik", "Brisa", "Calder", "Veloce", "Ondine"]
    return [Brand(name=f"{names[i % len(names)]}{i // len(names) or ''}",
                  keywords=[f"{names[i % len(names)].lower()}{i // len(names) or ''}", f"@{names[i % len(names)].lower()}",
                            f"{names[i % len(names)]} air", f"#{names[i % len(names)].lower()}fail"],
                  exclude=[f"{names[i % len(names)].lower()} pizza"]) for i in range(count)]


def events(count: int, keywords: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        did = f"did:plc:{rng.getrandbits(100):025x}"
        base = {"did": did, "time_us": 1_725_911_162_000_000 + i * 3000}
        roll = rng.random()
        if roll < 0.05:
            event = {**base, "kind": "commit", "commit": {"rev": "3l3qo2vuowp2b", "operation": "delete",
                                                          "collection": "app.bsky.feed.post", "rkey": f"3l{i:011d}"}}
        elif roll < 0.07:
            event = {**base, "kind": "identity", "identity": {"did": did, "handle": f"user{i}.bsky.social",
                                                              "seq": i, "time": "2024-09-05T06:11:04.870Z"}}
        elif roll < 0.08:
            event = {**base, "kind": "account", "account": {"active": True, "did": did, "seq": i,
                                                            "time": "2024-09-05T06:11:04.870Z"}}
        else:
            words = rng.choices(WORDS, k=rng.randint(8, 50))
            if rng.random() < 0.01:
                words.insert(rng.randrange(len(words)), rng.choice(keywords))
            record = {"$type": "app.bsky.feed.post", "createdAt": "2024-09-09T19:46:02.102Z",
                      "langs": [rng.choice(["en", "fr", "ja", "pt"])], "text": " ".join(words)}
            event = {**base, "kind": "commit", "commit": {"rev": "3l3qo2vutsw2b", "operation": "create",
                                                          "collection": "app.bsky.feed.post", "rkey": f"3l{i:011d}",
                                                          "record": record, "cid": f"bafyrei{i:020d}"}}
        out.append(json.dumps(event, ensure_ascii=False))
    return out


def run(messages: list[str], match: KeywordFilter) -> tuple[float, int]:
    """Seconds to take every message as the listener does, and how many posts matched."""
    authors, matched = Authors(None), 0
    start = time.perf_counter()
    for first in range(0, len(messages), 1000):  # a page every 1000 events, as on a busy stream
        batch = _Batch([])
        for message in messages[first:first + 1000]:
            event = json.loads(message)
            batch.take(event, match, authors)
            batch.time_us = max(batch.time_us or 0, int(event.get("time_us") or 0))
        matched += len(batch.mentions)
    return time.perf_counter() - start, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--brands", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chosen = brands(args.brands)
    match = KeywordFilter(chosen)
    messages = events(args.events, [k for b in chosen for k in b.keywords] + [b.exclude[0] for b in chosen])
    timings = [run(messages, match) for _ in range(args.repeat)]
    seconds, matched = min(timings)
    rate = args.events / seconds
    print(f"{args.events} events, {args.brands} brands ({sum(len(b.keywords) for b in chosen)} keywords): "
          f"best of {args.repeat} {seconds:.2f} s, {rate:,.0f} events/s on one core, {matched} posts matched "
          f"(target {TARGET:,} events/s: {'met' if rate >= TARGET else 'missed'})")
    print(json.dumps({"benchmark": "jetstream_keyword_filter", "events": args.events, "brands": args.brands,
                      "seconds": round(seconds, 3), "events_per_s": round(rate), "matched": matched,
                      "target_events_per_s": TARGET, "python": platform.python_version()}))


if __name__ == "__main__":
    main()

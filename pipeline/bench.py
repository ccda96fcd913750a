"""`ecoute bench`: quality on the public test splits next to published anchors, and speed.

Prints macro-F1 on UMSAB English and French sentiment, F1 of the complaint class and macro-F1
on the complaints data (fixed split), a confusion matrix for each, throughput end to end
(mentions/s at batch sizes 1, 32, 128) against the bare encoder, and peak memory. VADER and a
TF-IDF + logistic regression baseline (trained here on the train splits) run as peers.
"""
from __future__ import annotations

import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.pipeline import make_pipeline, make_union

from .encoder import Encoder
from .mention import Mention
from .rules import Rules
from .stages import SENTIMENTS, STAGES, Context, label, load_models, to_batch
from .text import detect_language, normalise
from .train import Split, read_complaints, read_umsab

ANCHORS = {
    "sentiment_en": "FastText 50.9 · XLM-R 68.2 · XLM-T 70.6 · TF-IDF+LR 51.6 · MiniLM+LR 61.3 · VADER 56.0",
    "sentiment_fr": "FastText 54.8 · XLM-R 72.0 · XLM-T 71.2 · TF-IDF+LR 60.2 · MiniLM+LR 53.6",
    "complaint": "ACL 2019 feature models ≈ 79 F1 · Jin & Aletras 2020 transformers macro-F1 up to 87 · "
                 "TF-IDF+LR 78.5 · MiniLM+LR 78.5 · fine-tuned MiniLM 85.8 (macro 88.7)",
}


@dataclass
class Task:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]


def tasks(data: Path) -> list[Task]:
    sentiment_train = read_umsab(data, "train")
    sentiment_test = read_umsab(data, "test")
    out = []
    for lang in ("en", "fr"):
        keep = [i for i, l in enumerate(sentiment_test.lang) if l == lang]
        test = Split([sentiment_test.texts[i] for i in keep], sentiment_test.labels[keep], [lang] * len(keep))
        out.append(Task(f"sentiment_{lang}", sentiment_train, test, SENTIMENTS))
    out.append(Task("complaint", read_complaints(data, "train"), read_complaints(data, "test"), ("no", "yes")))
    return out


def embedded_predict(rules: Rules) -> Callable[[Task], np.ndarray]:
    ctx = Context(rules, load_models(rules))

    def predict(task: Task) -> np.ndarray:
        """As the pipeline does it for a mention without a platform language: routed by detected language."""
        texts = [normalise(t) for t in task.test.texts]
        emb = ctx.models.encoder.encode(texts, ctx.models.batch_size)
        head = "complaint" if task.name == "complaint" else "sentiment"
        langs = [detect_language(t) for t in task.test.texts]
        return ctx.models.heads.predict(head, emb, texts, langs).argmax(axis=1)

    return predict


def tfidf_predict(task: Task) -> np.ndarray:
    features = make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=2.0, class_weight="balanced"))
    model.fit(task.train.texts, task.train.labels)
    return model.predict(task.test.texts)


def vader_predict(task: Task) -> np.ndarray | None:
    if task.name == "complaint":
        return None
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    scores = np.array([analyzer.polarity_scores(t)["compound"] for t in task.test.texts])
    return np.where(scores >= 0.05, 2, np.where(scores <= -0.05, 0, 1))


def score(task: Task, predicted: np.ndarray) -> str:
    gold = task.test.labels
    if task.name == "complaint":
        return f"F1 {100 * f1_score(gold, predicted):.1f} / macro {100 * f1_score(gold, predicted, average='macro'):.1f}"
    return f"macro-F1 {100 * f1_score(gold, predicted, average='macro'):.1f}"


def matrix(task: Task, predicted: np.ndarray) -> str:
    cm = confusion_matrix(task.test.labels, predicted, labels=list(range(len(task.classes))))
    width = max(len(c) for c in task.classes) + 2
    lines = ["gold \\ predicted".ljust(width + 6) + "".join(c.rjust(width) for c in task.classes)]
    lines += [f"{task.classes[i]}".ljust(width + 6) + "".join(str(v).rjust(width) for v in row)
              for i, row in enumerate(cm)]
    return "\n".join("    " + line for line in lines)


def _rate(items: list, size: int, work: Callable[[list], object]) -> float:
    started = time.perf_counter()
    for start in range(0, len(items), size):
        work(items[start:start + size])
    return len(items) / (time.perf_counter() - started)


def mixed_languages(split, n: int) -> list[str]:
    """The first n texts of a split taking its languages in turn (en, fr, en, fr…): both are first-class,
    and French mentions take another sentiment head, with word vectors of their own. Each language gives
    as many texts as the smallest one has."""
    by_lang: dict[str, list[str]] = {}
    for text, lang in zip(split.texts, split.lang):
        by_lang.setdefault(lang, []).append(text)
    taken = [text for group in zip(*by_lang.values()) for text in group]
    return taken[:n]


def throughput(rules: Rules, texts: list[str], batch_sizes=(1, 32, 128), rounds: int = 3) -> list[str]:
    """Mentions/s through every stage next to the bare encoder on the same batches. Each is timed
    `rounds` times, alternately, and the best round kept: on shared cores another job's burst
    otherwise lands on one of the two and skews their ratio."""
    ctx = Context(rules, load_models(rules))
    mentions = [Mention("bench", str(i), t) for i, t in enumerate(texts)]
    label(mentions[:8], ctx)  # warm up
    encoder = ctx.models.encoder
    reference = Encoder(rules.models.encoder, rules.models.max_length, adapter=encoder.adapter, backend="torch")
    lines = []
    for size in batch_sizes:
        sample = mentions[: max(64, min(len(mentions), size * 4))] if size == 1 else mentions
        end_to_end = bare = plain = 0.0
        for _ in range(rounds):
            end_to_end = max(end_to_end, _rate(sample, size, lambda batch: label(batch, ctx)))
            bare = max(bare, _rate(sample, size, lambda batch: encoder.encode([normalise(m.text) for m in batch], size)))
        for _ in range(max(1, rounds - 1)):
            plain = max(plain, _rate(sample, size,
                                     lambda batch: reference.encode([normalise(m.text) for m in batch], size)))
        lines.append(f"  batch {size:>3}: {end_to_end:6.1f} mentions/s end to end · bare encoder "
                     f"({encoder.backend}) {bare:6.1f} texts/s ({bare / end_to_end:.2f}x) · "
                     f"transformers on torch {plain:6.1f} texts/s · {len(sample)} mentions, best of {rounds}")
    return lines


def stage_times(rules: Rules, texts: list[str], size: int = 32) -> list[str]:
    """Milliseconds a mention spends in each stage at one batch size: where the time besides the encoder goes."""
    ctx = Context(rules, load_models(rules))
    mentions = [Mention("bench", str(i), t) for i, t in enumerate(texts)]
    label(mentions[:8], ctx)  # warm up
    spent = dict.fromkeys(["to_batch", *(stage.name for stage in STAGES)], 0.0)
    for start in range(0, len(mentions), size):
        began = time.perf_counter()
        batch = to_batch(mentions[start:start + size])
        spent["to_batch"] += time.perf_counter() - began
        for stage in STAGES:
            began = time.perf_counter()
            batch = stage.run(batch, ctx)
            spent[stage.name] += time.perf_counter() - began
    return [f"  {name:<18} {1000 * seconds / len(mentions):6.3f} ms a mention" for name, seconds in spent.items()]


def run(rules: Rules, data: Path, echo: Callable[[str], None], speed: bool = True) -> None:
    load = " · load average %.2f %.2f %.2f" % os.getloadavg()
    echo(f"Écoute benchmark — {time.strftime('%Y-%m-%d')} — {platform.machine()}, "
         f"{os.cpu_count()} CPU cores, Python {platform.python_version()}{load}")
    echo(f"model: {rules.models.encoder} encoder + heads ({rules.models.heads or 'shipped'}); test splits")
    systems = {"embedded": embedded_predict(rules), "tfidf+lr": tfidf_predict, "vader": vader_predict}
    for task in tasks(data):
        echo(f"\n{task.name} ({len(task.test.texts)} test items) — anchors: {ANCHORS[task.name]}")
        for name, predict in systems.items():
            predicted = predict(task)
            if predicted is None:
                continue
            echo(f"  {name:<9} {score(task, predicted)}")
            if name == "embedded":
                echo(matrix(task, predicted))
    from .evaluate_labels import EVALUATION_FILE, evaluate, print_report

    echo(f"\nintent, complaint category and severity — {EVALUATION_FILE.parent.name}/{EVALUATION_FILE.name}, "
         "364 EN/FR posts written for this project (category and severity: the complaints among them)")
    print_report(evaluate(rules), echo)
    if speed:
        echo("\nthroughput (target on 2 CPU cores: ≥ 150 mentions/s end to end, ≤ 1.5x the bare encoder; "
             "English and French test tweets in turn)")
        texts = mixed_languages(read_umsab(data, "test"), 512)
        for line in throughput(rules, texts):
            echo(line)
        echo("  time a mention spends in each stage at batch 32 (classify holds the encoder):")
        for line in stage_times(rules, texts):
            echo(line)
        echo("  load average after: %.2f %.2f %.2f (above the core count: other jobs shared them)"
             % os.getloadavg())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    echo(f"\npeak memory: {peak:.0f} MB")

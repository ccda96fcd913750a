"""`ecoute bench`: quality on the public test splits next to published anchors, and speed.

Prints macro-F1 on UMSAB sentiment in each of its eight languages beside XLM-R Multi and XLM-Twitter
Multi, F1 of the complaint class and macro-F1 on the complaints data (fixed split), irony and emotion on
TweetEval beside its leaderboard (when the heads have those tasks), a confusion matrix for English and
French sentiment and for complaints, throughput end to end (mentions/s at batch sizes 1, 32, 128, on
tweets of the eight languages in turn) against the bare encoder, and peak memory; the last line is one
JSON object with those figures. Every test tweet goes through the pipeline's own stages (normalised, its
language detected, classified: one encoding pass), as a mention without a platform language would.
VADER and a TF-IDF + logistic regression baseline (trained here on the train splits) run as peers on
English and French. Test splits are read, never trained on.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.pipeline import make_pipeline, make_union

from pipeline.models.encoder import Encoder
from pipeline.models.languages import NAMES, UMSAB
from pipeline.mention import Mention
from pipeline.rules import Rules
from pipeline.stages import SENTIMENTS, STAGES, Context, label, load_models, run_stages, to_batch
from pipeline.text import normalise
from pipeline.models.train import Split, machine, read_complaints, read_lines, read_umsab

ANCHORS = {
    "sentiment_en": "FastText 50.9 · XLM-R 68.2 · XLM-T 70.6 · TF-IDF+LR 51.6 · MiniLM+LR 61.3 · VADER 56.0",
    "sentiment_fr": "FastText 54.8 · XLM-R 72.0 · XLM-T 71.2 · TF-IDF+LR 60.2 · MiniLM+LR 53.6",
    "complaint": "ACL 2019 feature models ≈ 79 F1 · Jin & Aletras 2020 transformers macro-F1 up to 87 · "
                 "TF-IDF+LR 78.5 · MiniLM+LR 78.5 · fine-tuned MiniLM 85.8 (macro 88.7)",
}
# Published macro-F1 on each UMSAB test split of one model trained on all eight languages, as
# (XLM-R Multi, XLM-Twitter Multi). Source: the XLM-T README (github.com/cardiffnlp/xlm-t; Barbieri, Espinosa
# Anke, Camacho-Collados, "XLM-T", LREC 2022), copied in ../shared/data/README.md.
UMSAB_ANCHORS = {"en": (68.5, 70.6), "fr": (70.5, 71.2), "de": (72.8, 77.3), "es": (66.0, 67.9),
                 "it": (68.6, 69.1), "pt": (69.8, 75.4), "ar": (64.3, 66.9), "hi": (53.4, 56.4)}
# The TweetEval leaderboard on the test splits (github.com/cardiffnlp/tweeteval; Barbieri et al., Findings of
# EMNLP 2020), copied in ../shared/data/README.md: irony as F1 of the irony class, emotion as macro-F1.
TWEETEVAL_ANCHORS = {"irony": {"FastText": 63.1, "RoBERTa-base": 59.7, "Twitter-RoBERTa": 61.7, "BERTweet": 82.1},
                     "emotion": {"FastText": 65.2, "RoBERTa-base": 76.1, "Twitter-RoBERTa": 78.5, "BERTweet": 79.3}}
CLASSIFYING = ("normalise_text", "detect_lang", "classify")   # the stages a test tweet goes through


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


@dataclass
class Predicted:
    lang: list[str]                 # the language each text was routed by
    labels: dict[str, np.ndarray]   # task → the class index predicted for each text


def pipeline_predict(ctx: Context) -> Callable[[list[str]], Predicted]:
    """Texts → their labels as the pipeline gives them to mentions without a platform language: normalised,
    language detected, classified in one encoding pass; irony and emotion when the heads have them."""
    stages = tuple(stage for stage in STAGES if stage.name in CLASSIFYING)

    def predict(texts: list[str]) -> Predicted:
        batch = run_stages([Mention("bench", str(i), text) for i, text in enumerate(texts)], ctx, stages)
        labels = {"sentiment": np.array([SENTIMENTS.index(s) for s in batch["sentiment"]]),
                  "complaint": np.array(batch["complaint"], dtype=int)}
        heads = ctx.models.heads
        for task in ("irony", "emotion"):
            if task in heads.heads:
                labels[task] = heads.predict(task, np.stack(batch["embedding"]), batch["clean_text"],
                                             batch["lang"]).argmax(axis=1)
        return Predicted(batch["lang"], labels)

    return predict


def embedded_predict(predict: Callable[[list[str]], Predicted],
                     known: dict[str, np.ndarray]) -> Callable[[Task], np.ndarray]:
    """The pipeline as a system beside the peers; `known`: task name → labels predicted already (no second pass)."""
    def for_task(task: Task) -> np.ndarray:
        if task.name in known:
            return known[task.name]
        return predict(task.test.texts).labels["complaint" if task.name == "complaint" else "sentiment"]

    return for_task


def read_test(folder: Path, lang: str = "en") -> Split:
    """The test split of a UMSAB or TweetEval folder (tweets in `lang`), read as training reads the others."""
    texts, labels = read_lines(folder, "test")
    return Split(texts, np.array(labels), [lang] * len(texts))


def umsab_tests(data: Path) -> dict[str, Split | None]:
    """Each UMSAB language's test split (0 negative, 1 neutral, 2 positive), None where its folder is absent."""
    folders = {lang: data / "umsab" / folder for lang, folder in UMSAB.items()}
    return {lang: read_test(folder, lang) if (folder / "test_text.txt").is_file() else None
            for lang, folder in folders.items()}


@dataclass
class LanguageScore:
    lang: str
    tweets: int
    macro_f1: float        # ours, in percent
    detected: float        # percent of its tweets the detector gave this language
    predicted: np.ndarray  # the sentiment class predicted for each tweet


def sentiment_by_language(tests: dict[str, Split | None],
                          predict: Callable[[list[str]], Predicted]) -> list[LanguageScore]:
    """Macro-F1 of each language's test split, all languages predicted in one call (one pass)."""
    present = {lang: split for lang, split in tests.items() if split is not None}
    found = predict([text for split in present.values() for text in split.texts])
    scores, start = [], 0
    for lang, split in present.items():
        end = start + len(split.texts)
        predicted = found.labels["sentiment"][start:end]
        detected = np.mean([found_lang == lang for found_lang in found.lang[start:end]])
        scores.append(LanguageScore(lang, len(split.texts), 100 * f1_score(split.labels, predicted, average="macro"),
                                    100 * detected, predicted))
        start = end
    return scores


def language_table(scores: list[LanguageScore], absent: list[str] = ()) -> list[str]:
    """One line a language: ours beside XLM-R Multi and XLM-Twitter Multi, then the mean over those present."""
    lines = [f"  {'language':<12}{'tweets':>7}{'ours':>7}{'XLM-R multi':>13}{'XLM-T multi':>13}"
             f"{'detected as itself':>20}"]
    for s in scores:
        xlmr, xlmt = UMSAB_ANCHORS[s.lang]
        lines.append(f"  {NAMES[s.lang]:<12}{s.tweets:>7}{s.macro_f1:>7.1f}{xlmr:>13.1f}{xlmt:>13.1f}"
                     f"{s.detected:>19.0f}%")
    lines += [f"  {NAMES[lang]:<12} absent (no umsab/{UMSAB[lang]}/test_text.txt)" for lang in absent]
    if scores:
        mean = [np.mean([column(s) for s in scores]) for column in
                (lambda s: s.macro_f1, lambda s: UMSAB_ANCHORS[s.lang][0], lambda s: UMSAB_ANCHORS[s.lang][1])]
        lines.append(f"  {f'mean of {len(scores)}':<12}{'':>7}{mean[0]:>7.1f}{mean[1]:>13.1f}{mean[2]:>13.1f}")
        lines.append("  detected as itself: the share of a language's tweets the detector gives that language "
                     "(UMSAB's Hindi tweets are romanised; the detector knows Hindi in Devanagari)")
    return lines


def tweeteval_scores(data: Path, predict: Callable[[list[str]], Predicted],
                     tasks: set[str]) -> tuple[list[str], dict[str, float | None]]:
    """Irony (F1 of the irony class) and emotion (macro-F1) on TweetEval test beside its leaderboard, or a line
    saying why a task is absent (the heads lack it, or the data does)."""
    lines, figures = [], {}
    for task, average in (("irony", "binary"), ("emotion", "macro")):
        folder = data / "tweeteval" / task
        figures[task] = None
        if task not in tasks:
            lines.append(f"\n{task}: absent (the heads have no {task} task)")
            continue
        if not (folder / "test_text.txt").is_file():
            lines.append(f"\n{task}: absent (no tweeteval/{task}/test_text.txt in the data folder)")
            continue
        test = read_test(folder)
        figures[task] = 100 * f1_score(test.labels, predict(test.texts).labels[task], average=average)
        metric = "F1 of the irony class" if task == "irony" else "macro-F1"
        anchors = " · ".join(f"{name} {value}" for name, value in TWEETEVAL_ANCHORS[task].items())
        lines.append(f"\n{task} (TweetEval, {len(test.texts)} test items; {metric}) — leaderboard: {anchors}")
        lines.append(f"  embedded  {metric} {figures[task]:.1f}")
    return lines, figures


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
    """The first n texts of a split taking its languages in turn (en, fr, de…, en, fr…): every language is
    read, and some take heads of their own (French sentiment, with word vectors of its own). Each language
    gives as many texts as the smallest one has."""
    by_lang: dict[str, list[str]] = {}
    for text, lang in zip(split.texts, split.lang):
        by_lang.setdefault(lang, []).append(text)
    taken = [text for group in zip(*by_lang.values()) for text in group]
    return taken[:n]


def throughput(rules: Rules, texts: list[str], batch_sizes=(1, 32, 128), rounds: int = 3,
               rates: dict | None = None) -> list[str]:
    """Mentions/s through every stage next to the bare encoder on the same batches. Each is timed
    `rounds` times, alternately, and the best round kept: on shared cores another job's burst
    otherwise lands on one of the two and skews their ratio. `rates`, when given, gets batch size → the
    end-to-end mentions/s and the bare encoder's texts/s."""
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
        if rates is not None:
            rates[size] = {"end_to_end": round(end_to_end, 1), "bare_encoder": round(bare, 1)}
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


# Runs `ecoute classify` and writes the process's peak resident memory (VmHWM) to argv[1]. Read in the child:
# Linux carries a parent's high-water mark across fork and exec into the child's ru_maxrss.
_PEAK_OF_CLASSIFY = """
import pathlib, sys
from pipeline.cli import main
try:
    main(sys.argv[2:], standalone_mode=False)
finally:
    status = pathlib.Path("/proc/self/status").read_text().splitlines()
    pathlib.Path(sys.argv[1]).write_text(next(line.split()[1] for line in status if line.startswith("VmHWM")))
"""


def classify_peak_mb(texts: list[str], rules_file: str | None = None) -> float | None:
    """Peak resident memory (MB) of `ecoute classify` scoring these texts, in a process of its own: what a
    user's job needs, without the benchmark's data and reference encoders beside it (None without /proc)."""
    if not Path("/proc/self/status").exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        source, peak = Path(folder) / "mentions.jsonl", Path(folder) / "peak"
        source.write_text("".join(json.dumps({"id": str(i), "text": text}) + "\n" for i, text in enumerate(texts)),
                          encoding="utf-8")
        command = [sys.executable, "-c", _PEAK_OF_CLASSIFY, str(peak), "classify", str(source), "-o", os.devnull,
                   *(["--rules", rules_file] if rules_file else [])]
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"ecoute classify failed: {done.stderr.strip()[-500:]}")
        return int(peak.read_text()) / 1024   # kB


def run(rules: Rules, data: Path, echo: Callable[[str], None], speed: bool = True,
        rules_file: str | None = None) -> dict:
    """Print every figure beside its anchors, then the figures as one JSON line (also returned)."""
    load = " · load average %.2f %.2f %.2f" % os.getloadavg()
    echo(f"Écoute benchmark — {time.strftime('%Y-%m-%d %H:%M %Z')} — {machine()}, "
         f"Python {platform.python_version()}{load}")
    echo(f"model: {rules.models.encoder} encoder + heads ({rules.models.heads or 'shipped'}); test splits")
    ctx = Context(rules, load_models(rules))
    predict = pipeline_predict(ctx)
    umsab = umsab_tests(data)
    figures: dict = {}
    known = _languages(umsab, predict, echo, figures)
    _with_peers(data, embedded_predict(predict, known), echo, figures)
    lines, tweeteval = tweeteval_scores(data, predict, set(ctx.models.heads.heads))
    for line in lines:
        echo(line)
    figures.update({"irony_f1": _rounded(tweeteval["irony"]), "emotion_macro_f1": _rounded(tweeteval["emotion"])})
    from pipeline.bench.evaluate_labels import EVALUATION_FILE, evaluate, print_report

    echo(f"\nintent, complaint category and severity — {EVALUATION_FILE.parent.name}/{EVALUATION_FILE.name}, "
         "364 EN/FR posts written for this project (category and severity: the complaints among them)")
    print_report(evaluate(rules), echo)
    _complaints_by_language(ctx, echo, figures)
    if speed:
        _speed(rules, [split for split in umsab.values() if split is not None], echo, figures, rules_file)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    echo(f"\npeak memory: {peak:.0f} MB (this benchmark, with its data and the torch reference encoder)")
    figures["peak_memory_mb"] = round(peak)
    echo(json.dumps(figures))
    return figures


HELD_OUT_COMPLAINTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "complaints_fr_en.jsonl"


def complaint_f1_by_language(rows: list[dict], labels: list, gold: Callable[[dict], bool]) -> dict:
    """F1 of the complaint class per language, for the complaint head and for the intent head (the desk's)."""
    out = {}
    for lang in sorted({r["lang"] for r in rows}):
        rows_in = [i for i, r in enumerate(rows) if r["lang"] == lang]
        truth = [gold(rows[i]) for i in rows_in]
        out[lang] = {"n": len(rows_in),
                     "complaint_head": round(100 * f1_score(truth, [bool(labels[i].complaint) for i in rows_in]), 1),
                     "intent_head": round(100 * f1_score(truth, [labels[i].intent == "complaint" for i in rows_in]), 1)}
    return out


def _complaints_by_language(ctx: Context, echo: Callable[[str], None], figures: dict) -> None:
    """Complaint F1 in English and French on posts no model was trained on (tests/data)."""
    from pipeline.bench.evaluate_labels import EVALUATION_FILE

    sets = {HELD_OUT_COMPLAINTS: lambda r: bool(r["complaint"]), EVALUATION_FILE: lambda r: r["intent"] == "complaint"}
    echo("\ncomplaints by language, on posts written and labelled before any model scored them (F1 of complaint)")
    for path, gold in sets.items():
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        labels = label([Mention("twitter", str(r["id"]), r["text"]) for r in rows], ctx)
        scores = complaint_f1_by_language(rows, labels, gold)
        figures[f"complaint_f1_by_language_{path.stem}"] = scores
        for lang, s in scores.items():
            echo(f"  {path.name:26} {lang} ({s['n']:3} posts)  complaint head {s['complaint_head']:5.1f} · "
                 f"intent head {s['intent_head']:5.1f}")


def _languages(umsab: dict[str, Split | None], predict: Callable[[list[str]], Predicted],
               echo: Callable[[str], None], figures: dict) -> dict[str, np.ndarray]:
    """The per-language table; returns the sentiment predicted for each language's tweets, by task name."""
    languages = sentiment_by_language(umsab, predict)
    echo("\nsentiment by language (UMSAB test, macro-F1; each tweet routed by its detected language) — anchors: "
         "one model for all eight languages, XLM-T README (Barbieri et al., LREC 2022)")
    for line in language_table(languages, [lang for lang, split in umsab.items() if split is None]):
        echo(line)
    figures["sentiment_macro_f1"] = {s.lang: round(s.macro_f1, 1) for s in languages}
    figures["sentiment_mean"] = _rounded(float(np.mean([s.macro_f1 for s in languages])) if languages else None)
    figures["detected_as_itself"] = {s.lang: round(s.detected, 1) for s in languages}
    return {f"sentiment_{s.lang}": s.predicted for s in languages}


def _with_peers(data: Path, embedded: Callable[[Task], np.ndarray], echo: Callable[[str], None],
                figures: dict) -> None:
    """English and French sentiment and complaints: ours with its confusion matrix, then TF-IDF+LR and VADER."""
    systems = {"embedded": embedded, "tfidf+lr": tfidf_predict, "vader": vader_predict}
    for task in tasks(data):
        echo(f"\n{task.name} ({len(task.test.texts)} test items) — anchors: {ANCHORS[task.name]}")
        for name, predict in systems.items():
            predicted = predict(task)
            if predicted is None:
                continue
            echo(f"  {name:<9} {score(task, predicted)}")
            if name == "embedded":
                echo(matrix(task, predicted))
            if name == "embedded" and task.name == "complaint":
                figures["complaint_f1"] = _rounded(100 * f1_score(task.test.labels, predicted))
                figures["complaint_macro_f1"] = _rounded(100 * f1_score(task.test.labels, predicted, average="macro"))


def _speed(rules: Rules, umsab: list[Split], echo: Callable[[str], None], figures: dict,
           rules_file: str | None = None) -> None:
    echo(f"\nthroughput (target on 2 CPU cores: ≥ 150 mentions/s end to end, ≤ 1.5x the bare encoder; "
         f"test tweets of {len(umsab)} UMSAB languages in turn)")
    texts = mixed_languages(Split([t for split in umsab for t in split.texts], None,
                                  [lang for split in umsab for lang in split.lang]), 512)
    figures["throughput"] = {}
    for line in throughput(rules, texts, rates=figures["throughput"]):
        echo(line)
    echo("  time a mention spends in each stage at batch 32 (classify holds the encoder):")
    for line in stage_times(rules, texts):
        echo(line)
    peak = classify_peak_mb(texts, rules_file)
    figures["classify_peak_memory_mb"] = None if peak is None else round(peak)
    echo(f"  peak memory of `ecoute classify` on these {len(texts)} mentions, in a process of its own: "
         f"{figures['classify_peak_memory_mb']} MB (target ≤ 2,500)")
    echo("  load average after: %.2f %.2f %.2f (above the core count: other jobs shared them)" % os.getloadavg())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

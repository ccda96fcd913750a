"""The pipeline: named stages over a batch of mentions, in one visible order (`STAGES`).

A batch is a dict of columns (`Batch`: column name → one value per Mention, in order); each stage
declares the columns it reads and the ones it writes, and `check_order` proves every read is written
earlier. A stage that fails on one mention records the error on that row and moves on; it never stops
the batch. Plain lists rather than a DataFrame: the stages work row by row or hand whole columns to
numpy, and a DataFrame's bookkeeping cost more than the encoder on small batches (`ecoute bench`).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pipeline.models.categories import BareTopEncoder, category_encoder, name_categories
from pipeline.models.heads import NGRAM_CHARS, Heads, base_language, load_heads
from pipeline.models.encoder import CHARS_PER_TOKEN, Encoder, load_encoder
from pipeline.models.intents import ExtraHeads, load_extra_heads
from pipeline.models.languages import language_reason, measured_languages
from pipeline.mention import SENTIMENTS, Labels, Mention
from pipeline.rules import Rules
from pipeline.models.task_models import TaskClassifier, load_task_models
from pipeline.alerts.transparency import CUE_CHARS, find_risks
from pipeline.text import DETECTION_CHARS, MODEL_TEXT_CHARS, author_is, detect_language, detect_languages, mentioned_brands, mentioned_competitors, normalise

log = logging.getLogger(__name__)
INPUT_COLUMNS = ("key", "source", "text", "title", "lang", "author", "author_followers", "created_at", "url",
                 "author_created_at")
TRANSPARENCY_COLUMNS = ("key", "text", "title", "url", "author", "author_followers", "author_created_at",
                        "created_at", "brands", "official", "sentiment")
HEAD_TASKS = ("sentiment", "complaint")   # what the trained heads predict; `models.tasks` may replace each
OPTIONAL_HEAD_TASKS = ("emotion", "irony")  # read when the loaded heads have them (classes: TweetEval's order)
IRONY_THRESHOLD = 0.9   # below it, irony changes nothing; picked on val (see `read_irony`)
IRONY_COMPLAINT_WEIGHT = 0.5     # how much an ironic post counts as evidence of a complaint (see `read_irony`)
Batch = dict[str, list]   # column → one value per mention, in batch order
QUESTION_START = re.compile(
    r"^\s*(how|what|when|where|why|who|which|does|do|did|is|are|can|could|will|would|should|has|have|anyone|"
    r"est-ce|comment|pourquoi|quand|où|qui|quel|quelle|quels|quelles|combien|savez-vous|peut-on|y a-t-il|"
    r"vous savez|quelqu'un)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Models:
    encoder: Encoder
    heads: Heads
    batch_size: int = 32
    tasks: dict[str, tuple[TaskClassifier, int]] = field(default_factory=dict)  # task → (its own model, batch size)
    intents: ExtraHeads | None = None         # intent, category and severity heads (None: cue rules only)
    intents_encoder: Encoder | None = None    # theirs, when it is not `encoder` (same model and adapter)

    @property
    def uses_heads(self) -> bool:
        return (any(task not in self.tasks for task in HEAD_TASKS)
                or any(task in self.heads.heads for task in OPTIONAL_HEAD_TASKS))

    @property
    def name(self) -> str:
        parts = [f"{self.heads.card.get('model', 'heads')}+{self.encoder.name}"] if self.uses_heads else []
        parts += [f"{task}:{model.name}" for task, (model, _) in self.tasks.items()]
        return "+".join(parts + ([f"intent:{self.intents.name}"] if self.intents else []))


def reading_limits(max_length: int) -> str:
    """What each stage reads of a long post, for the model cards (`ecoute train` and `train-intents` write it)."""
    return (f"Reads at most: language detection, the first {DETECTION_CHARS:,} letters of a post; the models, its "
            f"first {MODEL_TEXT_CHARS:,} characters (the encoder {max_length} tokens of at most "
            f"{max_length * CHARS_PER_TOKEN:,} characters, the n-grams {NGRAM_CHARS:,} characters); transparency "
            f"cues, its first {CUE_CHARS:,} characters; brands are matched in the whole post.")


def load_models(rules: Rules) -> Models:
    """The configured encoder, the heads trained for it and any per-task models (loaded once per process)."""
    cfg = rules.models
    heads = load_heads(cfg.heads, encoder=cfg.encoder)
    adapter = str(heads.adapter) if heads.adapter else None
    backend = cfg.backend or heads.backend
    encoder = load_encoder(cfg.encoder, cfg.max_length, adapter, backend)
    intents = load_extra_heads(cfg.intent_heads)
    intents_encoder = None
    if not intents.reads_embeddings_of(encoder):
        log.warning("the intent heads were trained on %s, not on the configured encoder %s: loading theirs too "
                    "(one more encoding pass; retrain them with `ecoute train-intents`)", intents.heads.encoder,
                    encoder.name)
        intents_encoder = load_encoder(intents.heads.encoder, cfg.max_length,
                                       str(intents.adapter) if intents.adapter else None, backend)
    return Models(encoder, heads, cfg.batch_size, load_task_models(cfg), intents, intents_encoder)


@dataclass(frozen=True)
class Context:
    rules: Rules
    models: Models
    recent: tuple[dict, ...] = ()   # stored mentions that may complete a coordinated group (find_risks)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Batch, Context], Batch]
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def rows(batch: Batch, columns=None) -> list[dict]:
    """The batch as one dict per mention (of `columns`, or of every column)."""
    names = list(batch) if columns is None else [c for c in columns if c in batch]
    return [dict(zip(names, values)) for values in zip(*(batch[c] for c in names))]


def _each(batch: Batch, column: str, fn: Callable[[dict], object], fallback: object) -> list:
    """Apply fn row by row (each row a dict of the batch's columns); a row that fails gets the fallback
    and its error noted."""
    out = []
    errors = batch["error"]
    for i, row in enumerate(rows(batch)):
        try:
            out.append(fn(row))
        except Exception as exc:  # one hostile post must not stop the batch: recorded, not hidden
            errors[i] = f"{column}: {type(exc).__name__}: {exc}"
            out.append(fallback)
    return out


def normalise_text(batch: Batch, ctx: Context) -> Batch:
    handles = frozenset(a.lower() for b in ctx.rules.brands for a in b.official_accounts)

    def clean(row):
        title = row["title"] if isinstance(row["title"], str) and row["title"] else ""
        return normalise(f"{title}. {row['text']}" if title else row["text"], handles)

    batch["clean_text"] = _each(batch, "clean_text", clean, "")
    return batch


def detect_lang(batch: Batch, ctx: Context) -> Batch:
    """Keep the platform's language when it gave one; detect the others together, on every core (row by
    row when that fails, so only the row that cannot be read loses its language)."""
    def given(lang):
        return lang.lower() if isinstance(lang, str) and lang.strip() else None

    langs = [given(lang) for lang in batch["lang"]]
    missing = [i for i, lang in enumerate(langs) if lang is None]
    try:
        for i, found in zip(missing, detect_languages([batch["text"][i] for i in missing])):
            langs[i] = found
    except Exception:
        langs = _each(batch, "lang", lambda row: given(row["lang"]) or detect_language(row["text"]), "und")
    batch["lang"] = langs
    return batch


def match_brands(batch: Batch, ctx: Context) -> Batch:
    brands = ctx.rules.brands

    def search_text(row):
        return f"{row['title'] or ''} {row['text']}" if isinstance(row["title"], str) else row["text"]

    batch["brands"] = _each(batch, "brands", lambda r: mentioned_brands(search_text(r), brands), [])
    batch["competitors"] = _each(batch, "competitors", lambda r: mentioned_competitors(search_text(r), brands), [])
    batch["relevant"] = [bool(found) for found in batch["brands"]]
    official = [a for b in brands for a in b.official_accounts]
    batch["official"] = [author_is(a, official) for a in batch["author"]]
    return batch


def classify(batch: Batch, ctx: Context) -> Batch:
    """Sentiment and complaint from the encoder and the trained heads, in one encoding pass, or from
    a task's own model where `models.tasks` configures one. A mention in a language with a head of its
    own for a task (French sentiment) is scored by that head. When the heads have them, the emotion
    head names the most likely emotion, and the irony head's probability can turn praise into
    negative sentiment and a likelier complaint (`read_irony`); without them those columns are None."""
    texts = [t or " " for t in batch["clean_text"]]
    langs = batch["lang"]
    models = ctx.models
    embeddings = None
    keep = _keep_for_categories(batch, ctx) if models.uses_heads else None
    if keep is not None:   # the shared layers' states of the mentions that may need a category of the rules
        embeddings, shared = models.encoder.encode_sharing(texts, models.batch_size, keep)
        batch["shared_state"] = shared
    elif models.uses_heads:
        embeddings = models.encoder.encode(texts, models.batch_size)

    def predict(task: str) -> np.ndarray:
        if task in models.tasks:
            model, batch_size = models.tasks[task]
            return model.predict(texts, batch_size)
        return models.heads.predict(task, embeddings, texts, langs)

    sentiment = predict("sentiment")
    complaint = predict("complaint")[:, 1]
    irony = _optional_head(models, "irony", embeddings, texts, langs)
    if irony is not None:   # classes (no, yes) as complaint's; rounded as stored, so the reason agrees
        irony = irony[0][:, 1].astype(np.float64).round(4)
        measured = measured_languages(models.heads.card, "irony")
        acting = np.where([irony_acts(lang, measured) for lang in langs], irony, 0.0)
        sentiment, complaint = read_irony(sentiment, complaint, acting)
    batch["irony_score"] = _rounded(irony, len(texts))
    batch.update(_emotions(_optional_head(models, "emotion", embeddings, texts, langs), len(texts)))
    if embeddings is not None:
        batch["embedding"] = list(embeddings)
    best = sentiment.argmax(axis=1)
    batch["sentiment"] = [SENTIMENTS[i] for i in best]
    batch["sentiment_score"] = sentiment[np.arange(len(best)), best].astype(np.float64).round(4).tolist()
    batch["negative_score"] = sentiment[:, 0].astype(np.float64).tolist()
    batch["complaint_score"] = complaint.astype(np.float64).round(4).tolist()
    batch["complaint"] = (complaint >= 0.5).tolist()
    return batch


def _keep_for_categories(batch: Batch, ctx: Context) -> list[bool] | None:
    """Which mentions' shared hidden states `classify` keeps for `name_own_categories` (those whose first brand
    has categories in the rules), or None when none is needed: no such mention, or an encoder whose categories
    do not read them (no adapter, or one on every layer)."""
    if not getattr(ctx.models.encoder, "shares_bare_layers", False) or "brands" not in batch:
        return None
    wanted = {brand: bool(ctx.rules.categories_for(brand)) for brand in {(b or [None])[0] for b in batch["brands"]}}
    keep = [wanted[(b or [None])[0]] for b in batch["brands"]]
    return keep if any(keep) else None


def _optional_head(models: Models, task: str, embeddings: np.ndarray | None, texts: list[str],
                   langs: list) -> tuple[np.ndarray, list] | None:
    """A task the heads may have (emotion, irony): its class probabilities and class names, or None."""
    head = models.heads.heads.get(task)
    if head is None or embeddings is None:
        return None
    return models.heads.predict(task, embeddings, texts, langs), list(head.classes)


def _rounded(scores: np.ndarray | None, size: int) -> list:
    return [None] * size if scores is None else np.asarray(scores, dtype=np.float64).round(4).tolist()


def _emotions(found: tuple[np.ndarray, list] | None, size: int) -> Batch:
    """The most likely emotion and its probability per mention; None for each without an emotion head."""
    if found is None:
        return {"emotion": [None] * size, "emotion_score": [None] * size}
    proba, classes = found
    best = proba.argmax(axis=1)
    return {"emotion": [classes[i] for i in best], "emotion_score": _rounded(proba[np.arange(size), best], size)}


def read_irony(sentiment: np.ndarray, complaint: np.ndarray, irony: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sentiment probabilities and complaint scores once irony is taken into account.

    Sarcasm ("Great, another 3-hour delay. Thanks Aerolia!") praises in its words and complains in its
    meaning: the sentiment head reads it as positive and the complaint head as praise. Where the irony
    probability p is at least IRONY_THRESHOLD, the share p of the positive probability moves to negative
    (positive × (1 − p) stays), and the complaint score c becomes 1 − (1 − c)(1 − p × IRONY_COMPLAINT_WEIGHT):
    irony is counted as independent, half-sure evidence of a complaint (at p = 1, c = 0 becomes 0.5).
    Below the threshold nothing changes. The threshold is high because the irony head learned from English
    tweets of which half are ironic, and at 0.5 it fired on 35% of UMSAB's val tweets, costing 8.6 points
    of sentiment macro-F1; at 0.9 it fires on 2.2% of them for half a point, and the ironic TweetEval val
    tweets read as positive fall from 49% to 38% (measured 2026-12-03, val splits only).
    """
    ironic = irony >= IRONY_THRESHOLD
    p = irony[ironic]
    sentiment, complaint = np.array(sentiment, dtype=np.float64), np.array(complaint, dtype=np.float64)
    changed = sentiment[ironic]     # only these rows: the others keep every bit (priority rounds them)
    moved = changed[:, 2] * p
    changed[:, 2] -= moved
    changed[:, 0] += moved
    sentiment[ironic] = changed / changed.sum(axis=1, keepdims=True)
    complaint[ironic] = 1 - (1 - complaint[ironic]) * (1 - p * IRONY_COMPLAINT_WEIGHT)
    return sentiment, complaint


def is_question(text: str) -> bool:
    return "?" in text or bool(QUESTION_START.match(text))


def cue_intent(row: dict) -> str:
    """Intent from the complaint head and two cues: the fallback when no intent heads are loaded."""
    if row["complaint"]:
        return "complaint"
    if is_question(row["text"]):
        return "question"
    if row["sentiment"] == "positive" and row["sentiment_score"] >= 0.6:
        return "praise"
    return "other"


def _intent_embeddings(batch: Batch, models: Models, texts: list[str]) -> np.ndarray:
    if models.intents_encoder is not None:
        return models.intents_encoder.encode(texts, models.batch_size)
    if "embedding" in batch:
        return np.stack(batch["embedding"])
    return models.encoder.encode(texts, models.batch_size)


def infer_intent(batch: Batch, ctx: Context) -> Batch:
    """Intent (complaint, question, praise, other) from the intent head; for complaints, their category
    and severity. The intent head reads the complaint head's score too; on brand mentions it finds
    complaints better than that score alone (grouped cross-validation on pipeline/models/data: complaint F1
    85.6 against 72.7 EN / 51.0 FR), so its `complaint` intent is what gets a category: the built-in
    head's, or one of the rules' own categories where the mention's brand has some (`name_own_categories`)."""
    size = len(batch["key"])
    batch["category"] = [None] * size
    batch["severity"] = [None] * size
    heads = ctx.models.intents
    if heads is None:
        batch["intent"] = _each(batch, "intent", cue_intent, "other")
        return name_own_categories(batch, ctx)
    texts = [t or " " for t in batch["clean_text"]]
    try:
        base = heads.base_inputs(_intent_embeddings(batch, ctx.models, texts), texts)
        scores = np.asarray(batch["complaint_score"], dtype=np.float32)
        intents, _ = heads.predict("intent", base, texts, scores)
        complaints = [i for i, intent in enumerate(intents) if intent == "complaint"]
        found = {}
        if complaints:
            subset = [texts[i] for i in complaints]
            for task in ("category", "severity"):
                found[task], _ = heads.predict(task, base[complaints], subset, scores[complaints])
        batch["intent"] = list(intents)
        for task, values in found.items():
            for i, value in zip(complaints, values):
                batch[task][i] = value
    except Exception as exc:  # the heads failed on this batch: the cue rules still give every row an intent
        log.exception("intent heads failed on a batch of %d", size)
        batch["intent"] = _each(batch, "intent", cue_intent, "other")
        batch["error"] = [e or f"intent: {type(exc).__name__}: {exc}" for e in batch["error"]]
    return name_own_categories(batch, ctx)


def name_own_categories(batch: Batch, ctx: Context) -> Batch:
    """The category of each complaint whose brand (its first matched one) has categories in the rules, its
    own or the shared ones: their `name`, or "other" when it fits none (pipeline/models/categories.py). Read from
    the encoder's embeddings without its adapter: `classify`'s when there is none; the bare top layers over the
    states `classify` kept when the adapter leaves the lower layers alone (the shipped heads); else one more
    pass of the bare encoder over the complaints only."""
    complaints = [i for i, intent in enumerate(batch["intent"]) if intent == "complaint"]
    brands = [(batch["brands"][i] or [None])[0] for i in complaints]
    if not any(ctx.rules.categories_for(brand) for brand in set(brands)):
        return batch
    try:
        encoder = category_encoder(ctx.models.encoder)
        shared = batch.get("shared_state")
        if encoder is ctx.models.encoder and "embedding" in batch:
            embeddings = np.stack([batch["embedding"][i] for i in complaints])
        elif isinstance(encoder, BareTopEncoder) and shared and all(shared[i] is not None for i in complaints):
            embeddings = encoder.topic_vectors([shared[i] for i in complaints], ctx.models.batch_size)
        else:
            embeddings = encoder.encode([batch["clean_text"][i] or " " for i in complaints], ctx.models.batch_size)
        for i, name in zip(complaints, name_categories(ctx.rules, encoder, embeddings, brands)):
            if name is not None:
                batch["category"][i] = name
    except Exception as exc:  # the categories failed on this batch: the built-in ones stay, the error is noted
        log.exception("rules categories failed on a batch of %d", len(batch["key"]))
        for i in complaints:
            batch["error"][i] = batch["error"][i] or f"category: {type(exc).__name__}: {exc}"
    return batch


def flag_transparency(batch: Batch, ctx: Context) -> Batch:
    """Undisclosed promotion or affiliation, coordinated posting (within the batch and against recent
    stored mentions), accusations of deception: the kinds in `transparency`, the reasons beside them."""
    try:
        risks = find_risks(rows(batch, TRANSPARENCY_COLUMNS), ctx.rules, ctx.recent)
    except Exception as exc:  # a broken rule must not stop classification: recorded on every row
        log.exception("transparency check failed on a batch of %d", len(batch["key"]))
        batch["error"] = [e or f"transparency: {type(exc).__name__}: {exc}" for e in batch["error"]]
        risks = [[] for _ in batch["key"]]
    batch["transparency"] = [list(dict.fromkeys(r.kind for r in found)) for found in risks]
    batch["risk_reasons"] = [[f"{r.kind.replace('_', ' ')}: {r.reason}" for r in found] for found in risks]
    return batch


def decide_response(batch: Batch, ctx: Context) -> Batch:
    """A human should answer: a relevant complaint, question or accusation of deception (for comms) not
    written by the brand itself."""
    batch["needs_response"] = [
        bool(relevant and not official and (intent in ("complaint", "question") or "deception_accusation" in kinds))
        for relevant, official, intent, kinds in zip(batch["relevant"], batch["official"], batch["intent"],
                                                     batch["transparency"])]
    return batch


def _followers(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else (f"{n / 1e3:.0f}k" if n >= 1e3 else f"{int(n)}")


def irony_acts(lang: object, measured: tuple[str, ...]) -> bool:
    """Whether irony may change a mention's labels: only in a language the irony head was trained and
    measured on (`measured_languages(card, "irony")`: English, TweetEval). Elsewhere its score is kept but
    reads noise as sarcasm: French thank-you posts scored 0.9-0.97 and turned into complaints."""
    return base_language(lang) in measured


def _irony_reason(irony: float | None, acts: bool) -> str | None:
    """'ironic 0.81' when irony changed the labels (see `read_irony`); it adds no weight of its own."""
    return f"ironic {irony:.2f}" if acts and irony is not None and irony >= IRONY_THRESHOLD else None


def score_priority(batch: Batch, ctx: Context) -> Batch:
    """0–100 from the weights in rules.yaml `queue.weights`: complaint likelihood, negativity, a question
    waiting, severity, the author's reach, transparency risks; each part that counts is named in `reasons`,
    and so is a language the sentiment heads were not measured on (models/languages.py; not for a task model's)."""
    queue = ctx.rules.queue
    measured = None if "sentiment" in ctx.models.tasks else measured_languages(ctx.models.heads.card)
    ironic_languages = measured_languages(ctx.models.heads.card, "irony")   # once a batch, not once a row
    w = queue.weights
    full_reach = math.log10(1 + queue.followers_for_max_reach)

    def score(row):
        followers = row["author_followers"]
        followers = followers if followers is not None and followers == followers else 0   # None or NaN: 0
        reach = min(1.0, math.log10(1 + max(0, followers)) / full_reach)
        severity = row["severity"] if isinstance(row["severity"], str) else None
        parts = [
            (w.complaint * row["complaint_score"], f"complaint {row['complaint_score']:.2f}" if row["complaint"] else None),
            (w.negative * row["negative_score"], f"negative {row['negative_score']:.2f}"
             if row["sentiment"] == "negative" else None),
            (0, _irony_reason(row.get("irony_score"), irony_acts(row["lang"], ironic_languages))),
            (w.question if row["intent"] == "question" else 0, "question" if row["intent"] == "question" else None),
            (getattr(w.severity, severity, 0) if severity else 0,
             f"severity {severity.replace('_', ' ')}" if severity and severity != "no_explicit_reproach" else None),
            (w.reach * reach, f"{_followers(followers)} followers" if followers >= 1000 else None),
            (w.transparency * len(row["transparency"]), None),
            (w.deception if "deception_accusation" in row["transparency"] else 0, None),
            (0, language_reason(row["lang"], measured) if measured is not None else None),
        ]
        total = sum(p for p, _ in parts) if row["relevant"] else 0
        return int(round(max(0, min(100, total)))), [r for _, r in parts if r] + list(row["risk_reasons"])

    scored = _each(batch, "priority", score, (0, []))
    batch["priority"] = [s for s, _ in scored]
    batch["reasons"] = [r for _, r in scored]
    return batch


STAGES: tuple[Stage, ...] = (
    Stage("normalise_text", normalise_text, ("text", "title"), ("clean_text",)),
    Stage("detect_lang", detect_lang, ("text", "lang"), ("lang",)),
    Stage("match_brands", match_brands, ("text", "title", "author"), ("brands", "competitors", "relevant", "official")),
    Stage("classify", classify, ("clean_text", "lang", "brands"),
          ("sentiment", "sentiment_score", "negative_score", "complaint", "complaint_score", "emotion",
           "emotion_score", "irony_score")),
    Stage("infer_intent", infer_intent, ("text", "clean_text", "complaint", "complaint_score", "sentiment",
                                         "sentiment_score", "brands"), ("intent", "category", "severity")),
    Stage("flag_transparency", flag_transparency, TRANSPARENCY_COLUMNS, ("transparency", "risk_reasons")),
    Stage("decide_response", decide_response, ("relevant", "official", "intent", "transparency"), ("needs_response",)),
    Stage("score_priority", score_priority,
          ("complaint", "complaint_score", "negative_score", "sentiment", "intent", "severity", "author_followers",
           "transparency", "risk_reasons", "relevant", "irony_score", "lang"), ("priority", "reasons")),
)


def check_order(stages: tuple[Stage, ...] = STAGES) -> None:
    """Raise ValueError when a stage reads a column that no earlier stage (nor the input) wrote."""
    available = set(INPUT_COLUMNS)
    for stage in stages:
        missing = [c for c in stage.reads if c not in available]
        if missing:
            raise ValueError(f"stage '{stage.name}' reads {missing} before any stage writes them")
        available |= set(stage.writes)


def to_batch(mentions: list[Mention]) -> Batch:
    """The input columns of a batch, one value per mention, and an empty `error` column."""
    batch = {column: [getattr(m, column) for m in mentions] for column in INPUT_COLUMNS}
    batch["error"] = [None] * len(mentions)
    return batch


def run_stages(mentions: list[Mention], ctx: Context, stages: tuple[Stage, ...] = STAGES) -> Batch:
    batch = to_batch(mentions)
    if not mentions:
        return batch
    for stage in stages:
        batch = stage.run(batch, ctx)
    return batch


def label(batch: list[Mention], ctx: Context) -> list[Labels]:
    """Run every stage over a batch; one Labels per Mention, in order."""
    return [Labels(
        mention_key=row["key"], lang=row["lang"], relevant=bool(row["relevant"]), brands=tuple(row["brands"]),
        competitors=tuple(row["competitors"]), sentiment=row["sentiment"],
        sentiment_score=float(row["sentiment_score"]), complaint=bool(row["complaint"]),
        complaint_score=float(row["complaint_score"]), intent=row["intent"], category=row["category"],
        severity=row["severity"], needs_response=bool(row["needs_response"]), priority=int(row["priority"]),
        transparency=tuple(row["transparency"]), reasons=tuple(row["reasons"]), model=ctx.models.name,
        error=row["error"], emotion=row["emotion"], emotion_score=row["emotion_score"],
        irony_score=row["irony_score"],
    ) for row in rows(run_stages(batch, ctx))]

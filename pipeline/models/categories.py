"""Complaint categories a brand writes itself in rules.yaml: a name, a description and a few examples.

No training step: the first time a brand's categories are needed, their texts (the description, then
each example) are embedded by `category_encoder`, and each category becomes the mean of its vectors (nearest centroid). A complaint gets the category whose centroid is
closest to its embedding; when it is clearly less close to every centroid than the least typical example
is to its own category's (`CategoryHead.floor`), it fits none of them and gets OTHER. The example vectors are
cached on disk, keyed by the categories' text and the encoder's identity (weights, adapter, length,
backend), so a restart does not embed them again.

Which embeddings: the configured encoder's *without* its adapter (`category_encoder`). The shipped
adapter was tuned for sentiment and complaints and folds topics together: on airline complaint tweets,
nearest centroid over its embeddings named 31% of reasons, over the bare e5's 60% (20% dev split,
pipeline/bench/evaluate_categories.py). The shipped adapter changes only the top 6 of e5's 12 layers, so
`classify` keeps the hidden state after layer 6 of the mentions whose brand has categories, and a complaint
costs the bare model's top 6 layers from there (`BareTopEncoder`), not a second encoder; an adapter that
changes every layer falls back to the bare encoder, loaded once more, encoding the complaints again.
Without an adapter, `classify`'s embeddings are reused and a mention costs one small matrix product.
Nearest centroid rather than a fitted classifier: with 2–10 examples a category there is nothing to
regularise against, and logistic regression on the same vectors did no better
(59.6% against 60.2% on that split; docs/drafts/cat.md has the figures).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.models.encoder import cache_dir, weights_id
from pipeline.models.intents import adapter_fingerprint
from pipeline.rules import Category, Rules

log = logging.getLogger(__name__)
OTHER = "other"                 # what a complaint that fits none of the brand's categories gets
FLOOR_SPREAD = 2.0             # OTHER below the least typical example's cosine less this many standard deviations
LOOKALIKE_COSINE = 0.93         # two examples of different categories this close read as one (measured)
CACHE_VERSION = "categories-v1"   # in every cache key: a new way of embedding makes new files
CategoryKey = tuple[tuple[str, str, tuple[str, ...]], ...]   # (name, description, examples) per category


@dataclass(frozen=True)
class CategoryHead:
    """Nearest centroid over a brand's categories, in the space of the encoder that embedded them."""

    names: tuple[str, ...]
    centroids: np.ndarray        # (categories, dim), unit length
    vectors: np.ndarray          # (texts, dim): each category's description (if any) and examples, in order
    owners: np.ndarray           # (texts,): the category index of each row of `vectors`
    floor: float                 # below this cosine to every centroid, a complaint fits none (`least_typical`)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine of each embedding (unit length, one per row) to each category's centroid."""
        return np.asarray(embeddings, dtype=np.float32) @ self.centroids.T

    def predict(self, embeddings: np.ndarray) -> list[str]:
        """The closest category's name per embedding, or OTHER where even that one is below the floor."""
        if not len(embeddings):
            return []
        scores = self.similarities(embeddings)
        best = scores.argmax(axis=1)
        return [self.names[b] if scores[i, b] >= self.floor else OTHER for i, b in enumerate(best)]


def category_key(categories: list[Category]) -> CategoryKey:
    return tuple((c.name, c.description, tuple(c.examples)) for c in categories)


def category_texts(key: CategoryKey) -> tuple[list[str], list[int]]:
    """The texts that stand for each category, and whose category each is: its description (with its
    name, which says as much as a phrase: "luggage: bags lost, delayed or damaged") and its examples."""
    texts, owners = [], []
    for index, (name, description, examples) in enumerate(key):
        for text in ([f"{name.replace('_', ' ')}: {description}"] if description.strip() else []) + list(examples):
            texts.append(text)
            owners.append(index)
    return texts, owners


def encoder_identity(encoder) -> str:
    """What an embedding depends on besides the text: the weights, the adapter, the length read, the backend."""
    return "|".join(str(part) for part in (
        weights_id(getattr(encoder, "name", None)), adapter_fingerprint(getattr(encoder, "adapter", None)),
        getattr(encoder, "max_length", None), getattr(encoder, "backend", None), getattr(encoder, "prefix", None)))


def cache_file(key: CategoryKey, encoder) -> Path:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, encoder_identity(encoder), key], ensure_ascii=False)
                            .encode()).hexdigest()[:24]
    return cache_dir() / "categories" / f"{digest}.npy"


def embed_texts(key: CategoryKey, encoder) -> np.ndarray:
    """The vectors of `category_texts(key)`, from the disk cache when this encoder embedded them before."""
    texts, _ = category_texts(key)
    path = cache_file(key, encoder)
    if path.exists():
        try:
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors
        except (OSError, ValueError, EOFError) as exc:   # a torn or foreign file: embed again, replace it
            log.warning("category cache %s unreadable (%s); embedding the examples again", path, exc)
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as out:
            np.save(out, vectors)
        os.replace(partial, path)   # atomic: a parallel process never reads half a file
    except OSError as exc:  # a read-only cache only costs the next start a few hundred ms
        log.warning("cannot cache category examples in %s: %s", path.parent, exc)
    return vectors


@functools.lru_cache(maxsize=32)
def fit_head(key: CategoryKey, encoder) -> CategoryHead:
    """The categories' nearest-centroid head for this encoder, fitted once per process."""
    vectors = embed_texts(key, encoder)
    _, owners = category_texts(key)
    owners = np.asarray(owners)
    centroids = np.stack([vectors[owners == i].mean(axis=0) for i in range(len(key))])
    centroids /= np.clip(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12, None)
    return CategoryHead(tuple(name for name, _, _ in key), centroids.astype(np.float32), vectors, owners,
                        least_typical(vectors, owners))


def least_typical(vectors: np.ndarray, owners: np.ndarray, spread: float = FLOOR_SPREAD) -> float:
    """The floor: the lowest cosine of a category text to its own category's centroid (itself left out),
    less `spread` standard deviations of those cosines.

    A complaint further from every category than that fits none of them and gets OTHER. Relative to the
    examples rather than a fixed number, because cosines live on another scale with each encoder (e5's
    between any two tweets are rarely under 0.75). The lowest cosine alone was too tight: on the demo's
    categories (5 coherent examples each) it sent 38 of Aerolia's 135 complaints to OTHER, suitcases
    and missed connections among them; two standard deviations below it (0.866 there) leave 1 of 135
    (hidden fees) and 1 of Lumelle's 74 (a post about undisclosed influencers), while a post about
    something else entirely still falls below it."""
    cosines = []
    for row, owner in enumerate(owners):
        rest = (owners == owner) & (np.arange(len(owners)) != row)
        if rest.any():
            centroid = vectors[rest].mean(axis=0)
            cosines.append(float(centroid @ vectors[row] / max(np.linalg.norm(centroid), 1e-12)))
    if not cosines:
        return 1.0
    return min(cosines) - spread * float(np.std(cosines))


def category_encoder(encoder):
    """The encoder the categories read: the pipeline's own when it has no adapter; when its adapter leaves the
    lower layers alone (the shipped heads': 6 of 12), the bare model's top layers over the pipeline encoder's
    shared hidden state (`BareTopEncoder`); else the same model and backend without the adapter (loaded once
    per process)."""
    if not getattr(encoder, "adapter", None):
        return encoder
    if getattr(encoder, "shares_bare_layers", False):
        return bare_top_encoder(encoder)
    from pipeline.models.encoder import load_encoder

    return load_encoder(encoder.name, encoder.max_length, None, encoder.backend)


@dataclass(frozen=True, eq=False)
class BareTopEncoder:
    """The bare model's embeddings from an adapted encoder that shares its lower layers with it: `encode` runs
    the adapted encoder's shared layers, then only the bare top layers; `topic_vectors` starts from states the
    pipeline kept while it encoded (`Encoder.encode_sharing`), so a complaint costs the top layers only.
    Its identity (the cache key of category vectors) is the bare model's, marked as read through this split:
    the vectors agree with the bare encoder's to a cosine of 1.0 in float and 0.999 in int8 (1,597 airline
    tweets: the int8 top layers are rounded on their own, the bare encoder's with the rest)."""

    adapted: object

    @property
    def name(self):
        return self.adapted.name

    @property
    def max_length(self):
        return self.adapted.max_length

    @property
    def prefix(self):
        return self.adapted.prefix

    @property
    def adapter(self):
        return None

    @property
    def backend(self):
        return f"{self.adapted.backend}+bare-top{self.adapted.shared_layers}"

    @property
    def dim(self):
        return self.adapted.dim

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        _, states = self.adapted.encode_sharing(texts, batch_size)
        return self.topic_vectors(states, batch_size)

    def topic_vectors(self, states: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.adapted.topic_vectors(states, batch_size)


@functools.lru_cache(maxsize=4)
def bare_top_encoder(encoder) -> BareTopEncoder:
    """One per pipeline encoder, so that `fit_head`'s cache (keyed by the encoder object) hits."""
    return BareTopEncoder(encoder)


def head_for(rules: Rules, brand: str | None, encoder) -> CategoryHead | None:
    """The head of the categories a complaint about `brand` is sorted into; None: the built-in list."""
    categories = rules.categories_for(brand)
    return fit_head(category_key(categories), encoder) if categories else None


def name_categories(rules: Rules, encoder, embeddings: np.ndarray, brands: list[str | None]) -> list[str | None]:
    """The rules' category of each complaint (its embedding, its first matched brand); None where the brand
    has no categories of its own nor shared ones, so the built-in head names it."""
    out: list[str | None] = [None] * len(brands)
    for brand in dict.fromkeys(brands):
        head = head_for(rules, brand, encoder)
        if head is None:
            continue
        rows = [i for i, b in enumerate(brands) if b == brand]
        for i, name in zip(rows, head.predict(embeddings[rows])):
            out[i] = name
    return out


@dataclass(frozen=True)
class Lookalike:
    """An example that reads like another category's: the two examples and how close they are."""

    category: int        # index in the list checked
    example: int
    other: int
    other_example: int
    cosine: float
    closer_to_other: bool   # the categories themselves would name it `other`: nearer that centroid than its own


def lookalikes(key: CategoryKey, encoder, threshold: float = LOOKALIKE_COSINE) -> list[Lookalike]:
    """Examples that may be sorted into another category than their own: their nearest example in another
    category is at least `threshold` close (a near paraphrase), or the other category's centroid is closer
    than their own category's (which they are part of). Descriptions are not examples, only part of the
    centroids.

    Why these two and not "nearer another centroid once left out of its own": e5 puts any two complaints
    close together (on tests/data/airline_categories.yaml, examples of one category are 0.86 apart at the
    median, of two different ones 0.83), and that test flagged 12 of its 35 distinct examples; a warning
    that fires on a third of a careful file is noise. The two kept fire on none of them (the closest pair
    across categories there is 0.922, hence LOOKALIKE_COSINE 0.93) and on a copied or misfiled example."""
    head = fit_head(key, encoder)
    rows = example_rows(key)
    found, reported = [], set()
    for row, (owner, example) in rows.items():
        vector = head.vectors[row]
        others = [r for r, (o, _) in rows.items() if o != owner]
        if not others:
            continue
        cosines = head.vectors[others] @ vector
        nearest = others[int(np.argmax(cosines))]
        centroid_scores = head.centroids @ vector
        rival = int(np.argmax(np.where(np.arange(len(key)) == owner, -np.inf, centroid_scores)))
        closer = bool(centroid_scores[rival] > centroid_scores[owner])
        if float(cosines.max()) < threshold and not closer:
            continue
        other = rows[nearest][0] if float(cosines.max()) >= threshold else rival
        other_row = max((r for r in others if rows[r][0] == other), key=lambda r: float(head.vectors[r] @ vector))
        if (rows[other_row], (owner, example)) in reported:
            continue   # the same pair the other way round: one warning is enough
        reported.add(((owner, example), rows[other_row]))
        found.append(Lookalike(owner, example, other, rows[other_row][1], float(head.vectors[other_row] @ vector),
                               closer))
    return found


def example_rows(key: CategoryKey) -> dict[int, tuple[int, int]]:
    """Row of `category_texts(key)` → (category index, example index), for the examples only."""
    out, row = {}, 0
    for index, (_, description, examples) in enumerate(key):
        row += 1 if description.strip() else 0
        for example in range(len(examples)):
            out[row] = (index, example)
            row += 1
    return out


def describe_lookalike(key: CategoryKey, found: Lookalike) -> str:
    """"'my bag never came' looks like delays' 'bag stuck on the delayed flight' (cosine 0.94)"."""
    mine = key[found.category][2][found.example]
    theirs = key[found.other][2][found.other_example]
    closer = f"; nearer {key[found.other][0]} than {key[found.category][0]}" if found.closer_to_other else ""
    return (f"{_short(mine)} looks like {key[found.other][0]}' {_short(theirs)} (cosine {found.cosine:.2f}{closer}): "
            f"a complaint like it may be sorted into either; reword or move one")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 1].rstrip() + "…")


def lookalike_warnings(rules: Rules, path: str | Path, encoder=None) -> list[str]:
    """`ecoute rules check`'s warnings about categories: one located line per example that looks like another
    category's (`lookalikes`), e.g. "rules.yaml:14 categories[0].examples[2]: 'my bag…' looks like delays'
    'flight …' (cosine 0.94)"."""
    lists = category_lists(rules)
    if not lists:
        return []
    import yaml

    from pipeline.rules import _format_path, _line_of

    encoder = encoder or encoder_for_rules(rules)
    node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    out = []
    for loc, categories in lists:
        key = category_key(categories)
        for found in lookalikes(key, encoder):
            where = [*loc, found.category, "examples", found.example]
            out.append(f"{path}:{_line_of(node, where)} {_format_path(where)}: warning: "
                       f"{describe_lookalike(key, found)}")
    return out


def encoder_for_rules(rules: Rules):
    """The encoder the pipeline's categories read under these rules: `category_encoder` of load_models' encoder,
    without loading the other models (with the shipped heads, the adapted encoder's shared layers and the bare
    top layers: no second encoder, no second ONNX export)."""
    from pipeline.models.encoder import load_encoder
    from pipeline.models.heads import load_heads

    cfg = rules.models
    heads = load_heads(cfg.heads, encoder=cfg.encoder)
    adapter = str(heads.adapter) if heads.adapter else None
    return category_encoder(load_encoder(cfg.encoder, cfg.max_length, adapter, cfg.backend or heads.backend))


def category_lists(rules: Rules) -> list[tuple[list, list[Category]]]:
    """Each list of categories in the rules with its location: the shared one, then each brand's own."""
    lists = [(["categories"], rules.categories)] if rules.categories else []
    return lists + [(["brands", i, "categories"], b.categories) for i, b in enumerate(rules.brands) if b.categories]

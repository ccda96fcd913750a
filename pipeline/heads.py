"""Small trained heads on top of the encoder: what turns an embedding into a label.

Features are the encoder's sentence embedding next to hashed character and word n-grams with
TF-IDF weights: the measured baselines (../shared/data/README.md) show MiniLM's English
vocabulary cuts French badly while character n-grams do not, and that the two together beat
either on complaints. Heads are plain logistic regressions stored as numpy arrays (`.npz`, no
pickle), so they are small, safe to load and easy to retrain (`ecoute train`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

HEADS_DIR = Path(__file__).parent / "heads"
N_FEATURES = 2**16
TASKS = ("sentiment", "complaint")


class HeadsMismatch(RuntimeError):
    """The heads on disk were trained for another encoder."""


def _vectorizers() -> tuple[HashingVectorizer, HashingVectorizer]:
    common = dict(n_features=N_FEATURES, alternate_sign=False, norm=None, lowercase=True)
    return (HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
            HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", **common))


def ngram_counts(texts: list[str]) -> sparse.csr_matrix:
    chars, words = _vectorizers()
    return (chars.transform(texts) + words.transform(texts)).tocsr()


def fit_idf(counts: sparse.csr_matrix) -> np.ndarray:
    document_frequency = np.bincount(counts.indices, minlength=N_FEATURES)
    n = counts.shape[0]
    return (np.log((1 + n) / (1 + document_frequency)) + 1).astype(np.float32)


def features(embeddings: np.ndarray, texts: list[str], idf: np.ndarray) -> sparse.csr_matrix:
    """[embedding | l2-normalised TF-IDF n-grams] for each text."""
    counts = ngram_counts(texts).astype(np.float32)
    counts.data = np.log1p(counts.data)
    weighted = counts @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
    weighted = sparse.diags(1 / np.maximum(norms, 1e-9)) @ weighted
    return sparse.hstack([sparse.csr_matrix(embeddings), weighted], format="csr")


@dataclass(frozen=True)
class Head:
    task: str
    classes: tuple[str, ...]
    coef: np.ndarray       # (n_classes or 1, n_features)
    intercept: np.ndarray

    def predict_proba(self, x: sparse.csr_matrix) -> np.ndarray:
        logits = np.asarray(x @ self.coef.T) + self.intercept
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

    def predict(self, task: str, embeddings: np.ndarray, texts: list[str]) -> np.ndarray:
        return self.heads[task].predict_proba(features(embeddings, texts, self.idf))


def save_heads(directory: Path, encoder: str, dim: int, idf: np.ndarray, heads: dict[str, Head], card: dict) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / "features.npz", idf=idf.astype(np.float16))
    for task, head in heads.items():
        np.savez_compressed(directory / f"{task}.npz", coef=head.coef.astype(np.float32),
                            intercept=head.intercept.astype(np.float32), classes=np.array(head.classes))
    card = {**card, "encoder": encoder, "dim": dim, "n_features": N_FEATURES, "tasks": sorted(heads)}
    (directory / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def load_heads(directory: str | Path | None = None, encoder: str | None = None) -> Heads:
    """Heads from a directory (default: the ones shipped in pipeline/heads)."""
    directory = Path(directory) if directory else HEADS_DIR
    card_file = directory / "card.json"
    if not card_file.exists():
        raise FileNotFoundError(f"no trained heads in {directory} (card.json missing); run `ecoute train`")
    card = json.loads(card_file.read_text(encoding="utf-8"))
    if encoder is not None and card["encoder"] != encoder:
        raise HeadsMismatch(f"heads in {directory} were trained for encoder '{card['encoder']}', not '{encoder}'; "
                            f"run `ecoute train --encoder {encoder} --heads DIR` and set models.heads: DIR")
    idf = np.load(directory / "features.npz")["idf"].astype(np.float32)
    heads = {}
    for task in card["tasks"]:
        data = np.load(directory / f"{task}.npz", allow_pickle=False)
        heads[task] = Head(task, tuple(str(c) for c in data["classes"]), data["coef"], data["intercept"])
    adapter = directory / card["adapter"] if card.get("adapter") else None
    if adapter is not None and not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"heads in {directory} need the encoder adapter {adapter}, which is missing; "
                                f"run `ecoute train` again")
    return Heads(card["encoder"], int(card["dim"]), idf, heads, card, adapter)

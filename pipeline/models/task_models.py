"""Sequence-classification models per task (`models.tasks` in rules.yaml), their labels mapped to ours.

Any Hugging Face id or local path with a classification head works, e.g.
cardiffnlp/twitter-xlm-roberta-base-sentiment for multilingual sentiment. The model's own label
names (`config.id2label`: `LABEL_0`, `Negative`, `neg`…) are mapped to our classes by
`models.tasks.<task>.labels`; a label named like one of our classes maps itself, and one left
unmapped is an error, because guessing would silently swap classes. Several labels may map to one
class (a 1–5 star model): their probabilities add up.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from pipeline.rules import Models as ModelsConfig


# Names of classification-head weights across architectures (BERT, RoBERTa, DistilBERT, GPT-style `score`).
HEAD_WEIGHTS = ("classifier", "score", "pooler", "out_proj")


class TaskModelError(ValueError):
    """A configured task model cannot be loaded or its labels do not map onto our classes."""


def map_labels(task: str, model: str, id2label: dict[int, str], labels: dict[str, str],
               classes: tuple[str, ...]) -> list[int]:
    """For each of the model's outputs, in order, the index of our class it counts towards."""
    field = f"rules.yaml models.tasks.{task}.labels"
    names = [str(id2label[i]) for i in sorted(id2label)]
    given = {name.casefold(): ours for name, ours in labels.items()}
    known = {name.casefold() for name in names}
    strays = [name for name in labels if name.casefold() not in known]
    if strays:
        raise TaskModelError(f"{field}: {model} has no label {', '.join(map(repr, strays))}; "
                             f"its labels are {', '.join(names)}")
    columns = []
    for name in names:
        ours = labels.get(name) or given.get(name.casefold()) or (name.lower() if name.lower() in classes else None)
        if ours is None:
            raise TaskModelError(
                f"{field}: the {task} model {model} has a label '{name}' that is not mapped to one of our classes "
                f"({', '.join(classes)}); add it, e.g. `{name}: {classes[0]}` (the model's labels: {', '.join(names)})")
        columns.append(classes.index(ours))
    if len(set(columns)) < 2 and len(names) > 1:
        raise TaskModelError(f"{field}: every label of {model} maps to '{classes[columns[0]]}', "
                             f"so it can never predict anything else")
    return columns


def _load_pretrained(task: str, model: str):
    """Tokenizer and classifier from a hub id or a folder; every failure names the field to fix."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    field = f"rules.yaml models.tasks.{task}.model"
    location = os.path.expanduser(model)
    if model.startswith(("/", ".", "~")) and not Path(location).exists():
        raise TaskModelError(f"{field}: no such folder '{model}'")
    local_only = Path(location).exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
        classifier, info = AutoModelForSequenceClassification.from_pretrained(
            location, local_files_only=local_only, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise TaskModelError(f"{field}: cannot load '{model}': {exc}\n"
                             f"Hint: a hub id is downloaded once (not with HF_HUB_OFFLINE=1); "
                             f"a local path needs config.json, the weights and the tokenizer") from None
    missing = [k for k in info.get("missing_keys", ()) if any(part in k for part in HEAD_WEIGHTS)]
    if missing:  # a bare encoder gets a random classifier: its answers would be noise
        raise TaskModelError(f"{field}: '{model}' has no trained classification head (missing "
                             f"{', '.join(sorted(missing)[:3])}); use a fine-tuned sequence-classification "
                             f"model, or train heads for it with `ecoute train --encoder`")
    return tokenizer, classifier.eval()


class TaskClassifier:
    """One task's classifier: texts → probabilities over our classes, in length-sorted batches."""

    def __init__(self, task: str, model: str, labels: dict[str, str], classes: tuple[str, ...],
                 max_length: int = 128):
        self.task, self.name, self.classes = task, model, classes
        self.tokenizer, self.model = _load_pretrained(task, model)
        id2label = self.model.config.id2label
        if len(id2label) == 1 and len(classes) != 2:
            raise TaskModelError(f"rules.yaml models.tasks.{task}.model: '{model}' has a single output, which only "
                                 f"fits a two-class task ({task} has {', '.join(classes)})")
        self.columns = map_labels(task, model, id2label, labels, classes)
        if len(self.columns) == 1:  # one logit: sigmoid gives its class, the other class gets the rest
            self.columns.append(1 - self.columns[0])
        self.max_length = min(max_length, getattr(self.tokenizer, "model_max_length", None) or max_length)

    def predict(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), len(classes)) probabilities in our class order; each row sums to 1."""
        import torch

        outputs = np.zeros((len(texts), len(self.columns)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] or " " for i in index], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                logits = self.model(**batch).logits.float()
                if logits.shape[1] == 1:
                    positive = torch.sigmoid(logits)
                    probs = torch.cat([positive, 1 - positive], dim=1)
                else:
                    probs = torch.softmax(logits, dim=1)
                outputs[index] = probs.numpy()
        ours = np.zeros((len(self.columns), len(self.classes)), dtype=np.float32)
        ours[np.arange(len(self.columns)), self.columns] = 1.0
        return outputs @ ours


@functools.lru_cache(maxsize=8)
def load_task_model(task: str, model: str, labels: tuple[tuple[str, str], ...], classes: tuple[str, ...],
                    max_length: int) -> TaskClassifier:
    """One model per (task, model, labels, max_length) per process: models load once."""
    return TaskClassifier(task, model, dict(labels), classes, max_length)


def load_task_models(cfg: ModelsConfig) -> dict[str, tuple[TaskClassifier, int]]:
    """Every task with a configured model → (the loaded model, its batch size)."""
    loaded = {}
    for task, spec in cfg.tasks.configured().items():
        model = load_task_model(task, spec.model, tuple(spec.labels.items()), spec.classes,
                                spec.max_length or cfg.max_length)
        loaded[task] = (model, spec.batch_size or cfg.batch_size)
    return loaded

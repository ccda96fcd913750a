"""Multi-task LoRA fine-tuning of the encoder: one adapter that serves sentiment and complaints.

The frozen encoder with linear heads stops at about 61 macro-F1 on English tweet sentiment
(../shared/data/README.md); fine-tuning it lifts English and complaints, but a fine-tuned encoder
is 90 MB and a second one per task would double the cost of every mention. So one low-rank
adapter (peft LoRA on every linear layer, about 1.3 MB in float16) is trained on both tasks at
once, with a small classification layer per task on the mean-pooled embedding, and merged into
the encoder's weights at load time: inference costs exactly what the bare encoder costs.

The epoch kept is the one with the best validation score (sentiment macro-F1 + complaint F1);
test splits are never read here.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

log = logging.getLogger(__name__)
TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]


def _mean_pool(hidden, mask):
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def finetune(location: str, tasks: dict[str, dict], out: Path, *, max_length: int = 64, epochs: int = 4,
             batch_size: int = 32, lr: float = 8e-4, rank: int = 16, seed: int = 0,
             local_only: bool = True, prefix: str = "", top_layers: int | None = None) -> dict:
    """Train one LoRA adapter on several classification tasks; save it to `out`.

    `tasks` maps a task name to {"train": (texts, labels), "val": (texts, labels), "classes": n,
    "score": callable(gold, pred) -> float}. Returns per-epoch validation scores and the one kept.
    `prefix` is what the encoder reads before each text ("query: " for e5). With `top_layers`, only the
    last that many layers get the adapter: the layers below never change, so their output for each text
    is computed once and kept (float16), and every step runs the top layers only (with 4 of 12, an epoch
    costs about a third of a full pass).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    base = AutoModel.from_pretrained(location, local_files_only=local_only)   # its pooler is never used
    names = {name for name, module in base.named_modules() if isinstance(module, torch.nn.Linear)}
    targets = [t for t in TARGETS if any(n.endswith(t) for n in names)] or ["query", "value"]
    n_layers = int(base.config.num_hidden_layers)
    top_layers = top_layers if top_layers and top_layers < n_layers else None   # None: every layer
    first = n_layers - top_layers if top_layers else 0
    lower = _LowerLayers(base, tokenizer, first, max_length, prefix) if top_layers else None
    if lower is not None:
        lower.compute(sorted({t for spec in tasks.values() for part in ("train", "val") for t in spec[part][0]}))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=targets, bias="none",
                        **({"layers_to_transform": list(range(first, n_layers)), "layers_pattern": "layer"}
                           if top_layers else {}))
    with peft_quietly():
        model = get_peft_model(base, config)
    dim = int(base.config.hidden_size)
    heads = torch.nn.ModuleDict({t: torch.nn.Linear(dim, spec["classes"]) for t, spec in tasks.items()})
    dropout = torch.nn.Dropout(0.1)
    params = [p for p in model.parameters() if p.requires_grad] + list(heads.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)

    batches = []
    for task, spec in tasks.items():
        texts, labels = spec["train"]
        batches += [(task, i) for i in range(math.ceil(len(texts) / batch_size))]
    total = epochs * len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, step / max(1, total // 10)) * max(0.0, (total - step) / total))

    def encode(texts):
        if lower is not None:
            return lower.top(base, texts)
        batch = tokenizer([prefix + t for t in texts], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        return _mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])

    def predict(task, texts):
        model.eval()
        out = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                index = order[start:start + 64]
                logits = heads[task](encode([texts[i] for i in index]))
                out += list(zip(index, logits.argmax(-1).tolist()))
        return np.array([p for _, p in sorted(out)])

    history, best = [], None
    step = 0
    for epoch in range(1, epochs + 1):
        started = time.time()
        model.train()
        order = {t: _similar_lengths(s["train"][0], rng) for t, s in tasks.items()}
        rng.shuffle(batches)
        running = 0.0
        for n, (task, b) in enumerate(batches, 1):
            texts, labels = tasks[task]["train"]
            index = order[task][b * batch_size:(b + 1) * batch_size]
            logits = heads[task](dropout(encode([texts[i] for i in index])))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([int(labels[i]) for i in index]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            running += loss.item()
            if n % 50 == 0:
                log.info("epoch %d step %d/%d loss %.3f", epoch, n, len(batches), running / 50)
                running = 0.0
        scores = {t: round(100 * s["score"](np.asarray(s["val"][1]), predict(t, s["val"][0])), 1)
                  for t, s in tasks.items()}
        total_score = sum(scores.values())
        history.append({"epoch": epoch, "val": scores, "seconds": round(time.time() - started, 1)})
        log.info("epoch %d val %s (%.0f s)", epoch, scores, time.time() - started)
        if best is None or total_score > best[0]:
            best = (total_score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()
                                         if "lora_" in k})
    # keep the best epoch's adapter weights
    state = model.state_dict()
    state.update(best[2])
    model.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)   # peft's blank model-card template; the heads' card says it all
    _to_half(out)
    return {"epochs": history, "kept_epoch": best[1], "rank": rank, "targets": targets,
            "layers": list(range(first, n_layers)), "max_length": max_length, "lr": lr, "seed": seed,
            "tasks": {t: {"train": len(s["train"][0]), "val": len(s["val"][0])} for t, s in tasks.items()}}


def _similar_lengths(texts: list[str], rng: random.Random) -> list[int]:
    """Indices in an order where neighbours have about the same length (each length jittered by up to 20%),
    so that a batch pads little: random batches of tweets spend about half their work on padding."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]) * rng.uniform(0.8, 1.2))


class _LowerLayers:
    """The output of the encoder's layers below `first` for each text, computed once (no adapter there)."""

    def __init__(self, model, tokenizer, first: int, max_length: int, prefix: str):
        self.model, self.tokenizer, self.first = model, tokenizer, first
        self.max_length, self.prefix = max_length, prefix
        self.states: dict[str, object] = {}

    def _mask(self, hidden, mask):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=mask)

    def compute(self, texts: list[str], batch: int = 64) -> None:
        import torch

        started = time.time()
        order = sorted(texts, key=len)
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                chunk = order[start:start + batch]
                enc = self.tokenizer([self.prefix + t for t in chunk], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                hidden = self.model.embeddings(input_ids=enc["input_ids"],
                                               token_type_ids=torch.zeros_like(enc["input_ids"]))
                mask = self._mask(hidden, enc["attention_mask"])
                for layer in self.model.encoder.layer[:self.first]:
                    hidden = layer(hidden, mask)
                for text, row, length in zip(chunk, hidden, enc["attention_mask"].sum(1).tolist()):
                    self.states[text] = row[:length].to(torch.float16).clone()
                if start // batch % 50 == 0:
                    log.info("lower layers: %d/%d texts (%.0f s)", start, len(order), time.time() - started)

    def top(self, model, texts: list[str]):
        """Mean-pooled output of the top layers (with their adapter) for texts computed before."""
        import torch

        rows = [self.states[t] for t in texts]
        width = max(len(r) for r in rows)
        hidden = torch.zeros(len(rows), width, rows[0].shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            hidden[i, :len(r)] = r.float()
            mask[i, :len(r)] = 1
        attention = self._mask(hidden, mask)
        for layer in model.encoder.layer[self.first:]:
            hidden = layer(hidden, attention)
        return _mean_pool(hidden, mask)


def _to_half(out: Path) -> None:
    """Store the adapter in float16: half the size in git, no measurable change once merged."""
    from safetensors.torch import load_file, save_file

    path = out / "adapter_model.safetensors"
    tensors = load_file(str(path))
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(path))


def merge_adapter(model, adapter: Path):
    """The encoder with the adapter's low-rank updates added to its weights (no runtime cost)."""
    import torch
    from peft import PeftModel

    with peft_quietly():
        merged = PeftModel.from_pretrained(model, str(adapter), torch_dtype=torch.float32).merge_and_unload()
    return merged.float().eval()


@contextlib.contextmanager
def peft_quietly():
    """peft (0.21) wraps a model by reading transformers' `is_gradient_checkpointing`, deprecated since
    transformers 5: the FutureWarning is theirs, not a user's to act on, and every command that loads
    the adapter printed it. Only that warning is silenced, only around peft's own calls."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def macro_f1(gold, pred) -> float:
    return f1_score(gold, pred, average="macro")


def positive_f1(gold, pred) -> float:
    return f1_score(gold, pred)

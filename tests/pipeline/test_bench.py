"""The speed part of `ecoute bench`, on a few posts of our own (the quality part needs ../shared)."""
from pipeline.bench import mixed_languages, stage_times, throughput
from pipeline.stages import STAGES

POSTS = [f"Aerolia lost my bag on flight {i}, and nobody answers" if i % 2 else
         f"Merci Lumelle, la crème n°{i} est parfaite 😍" for i in range(16)]


def test_throughput_is_printed_for_each_batch_size_beside_the_bare_encoder(rules):
    lines = throughput(rules, POSTS, batch_sizes=(1, 8), rounds=1)
    assert [line.split(":")[0].strip() for line in lines] == ["batch   1", "batch   8"]
    for line in lines:
        assert "mentions/s end to end" in line and "bare encoder (onnx)" in line and "x)" in line


def test_the_time_of_every_stage_is_printed_in_pipeline_order(rules):
    lines = stage_times(rules, POSTS, size=8)
    assert [line.split()[0] for line in lines] == ["to_batch", *(stage.name for stage in STAGES)]
    assert all(float(line.split()[1]) >= 0 for line in lines)


def test_the_speed_sample_takes_english_and_french_in_turn():
    from pipeline.train import Split

    split = Split(["e1", "e2", "e3", "f1", "f2"], None, ["en", "en", "en", "fr", "fr"])
    assert mixed_languages(split, 3) == ["e1", "f1", "e2"]
    assert mixed_languages(split, 10) == ["e1", "f1", "e2", "f2"]

"""The speed part of `ecoute bench`, on a few posts of our own (the quality part needs ../shared)."""
import pytest

from pipeline.bench import classify_peak_mb, mixed_languages, stage_times, throughput
from pipeline.stages import STAGES

POSTS = [f"Aerolia lost my bag on flight {i}, and nobody answers" if i % 2 else
         f"Merci Lumelle, la crème n°{i} est parfaite 😍" for i in range(16)]


def test_throughput_is_printed_for_each_batch_size_beside_the_bare_encoder(rules):
    lines = throughput(rules, POSTS, batch_sizes=(1, 8), rounds=1)
    assert [line.split(":")[0].strip() for line in lines] == ["batch   1", "batch   8"]
    for line in lines:
        assert "mentions/s end to end" in line and "bare encoder (onnx" in line and "x)" in line


def test_the_time_of_every_stage_is_printed_in_pipeline_order(rules):
    lines = stage_times(rules, POSTS, size=8)
    assert [line.split()[0] for line in lines] == ["to_batch", *(stage.name for stage in STAGES)]
    assert all(float(line.split()[1]) >= 0 for line in lines)


def test_the_speed_sample_takes_english_and_french_in_turn():
    from pipeline.models.train import Split

    split = Split(["e1", "e2", "e3", "f1", "f2"], None, ["en", "en", "en", "fr", "fr"])
    assert mixed_languages(split, 3) == ["e1", "f1", "e2"]
    assert mixed_languages(split, 10) == ["e1", "f1", "e2", "f2"]


def _umsab(tmp_path, labels=(0, 1, 2, 0, 1, 2), skip=()):
    """A data folder with a few test tweets per UMSAB language: 'lang|label|i' each."""
    from pipeline.models.languages import UMSAB

    for lang, folder in UMSAB.items():
        if lang in skip:
            continue
        base = tmp_path / "umsab" / folder
        base.mkdir(parents=True)
        (base / "test_text.txt").write_text("\n".join(f"{lang}|{v}|{i}" for i, v in enumerate(labels)), "utf-8")
        (base / "test_labels.txt").write_text("\n".join(map(str, labels)) + "\n", "utf-8")
    return tmp_path


class FakePipeline:
    """Right on English and German, always 'negative' elsewhere; Hindi read as English. Counts its calls."""

    def __init__(self, tasks=("sentiment",)):
        self.calls, self.tasks = 0, tasks

    def __call__(self, texts):
        import numpy as np

        from pipeline.bench import Predicted

        self.calls += 1
        langs = [t.split("|")[0] for t in texts]
        gold = np.array([int(t.split("|")[1]) for t in texts])
        right = np.array([lang in ("en", "de") for lang in langs])
        labels = {task: np.where(right, gold, 0) for task in self.tasks}
        return Predicted(["en" if lang == "hi" else lang for lang in langs], labels)


def test_the_language_table_puts_each_umsab_language_beside_xlm_r_and_xlm_t_multi(tmp_path):
    from pipeline.bench import language_table, sentiment_by_language, umsab_tests

    predict = FakePipeline()
    tests = umsab_tests(_umsab(tmp_path, skip=("pt",)))
    scores = sentiment_by_language(tests, predict)
    assert predict.calls == 1      # every language in one pass
    rows = {line.split()[0]: line.split() for line in language_table(scores, ["pt"])}
    assert rows["English"] == ["English", "6", "100.0", "68.5", "70.6", "100%"]
    assert rows["German"] == ["German", "6", "100.0", "72.8", "77.3", "100%"]
    assert rows["French"] == ["French", "6", "16.7", "70.5", "71.2", "100%"]   # all negative: F1 0.5, 0, 0
    assert rows["Hindi"][2:] == ["16.7", "53.4", "56.4", "0%"]                  # never detected as Hindi
    assert " ".join(rows["Portuguese"]) == "Portuguese absent (no umsab/portuguese/test_text.txt)"
    xlm_r = (68.5 + 70.5 + 72.8 + 66.0 + 68.6 + 64.3 + 53.4) / 7   # the seven present
    assert rows["mean"][:5] == ["mean", "of", "7", f"{(2 * 100 + 5 * 50 / 3) / 7:.1f}", f"{xlm_r:.1f}"]


def test_irony_and_emotion_are_scored_beside_the_leaderboard_only_when_the_heads_have_them(tmp_path):
    from pipeline.bench import tweeteval_scores

    for task, labels in (("irony", (0, 1, 1, 0)), ("emotion", (0, 1, 2, 3))):
        base = tmp_path / "tweeteval" / task
        base.mkdir(parents=True)
        (base / "test_text.txt").write_text("\n".join(f"en|{v}|{i}" for i, v in enumerate(labels)), "utf-8")
        (base / "test_labels.txt").write_text("\n".join(map(str, labels)), "utf-8")
    lines, figures = tweeteval_scores(tmp_path, FakePipeline(("sentiment", "emotion")), {"sentiment", "emotion"})
    assert figures == {"irony": None, "emotion": 100.0}
    assert lines[0] == "\nirony: absent (the heads have no irony task)"
    assert lines[1].startswith("\nemotion (TweetEval, 4 test items; macro-F1) — leaderboard: FastText 65.2 · ")
    assert lines[1].endswith("BERTweet 79.3") and lines[2] == "  embedded  macro-F1 100.0"
    lines, figures = tweeteval_scores(tmp_path / "none", FakePipeline(("irony",)), {"irony"})
    assert lines[0] == "\nirony: absent (no tweeteval/irony/test_text.txt in the data folder)"


def test_the_eight_umsab_test_splits_are_read_whole(shared):
    from pipeline.bench import umsab_tests

    tests = umsab_tests(shared / "data")
    assert sorted(tests) == ["ar", "de", "en", "es", "fr", "hi", "it", "pt"]
    for lang, split in tests.items():
        assert len(split.texts) == len(split.labels) == 870 and set(split.labels) == {0, 1, 2}, lang


def test_the_pipeline_predictor_reads_irony_and_emotion_when_the_heads_have_them(rules):
    import dataclasses

    import numpy as np

    from pipeline.models import heads as H
    from pipeline.bench import pipeline_predict
    from pipeline.stages import Context, load_models

    def always(task, classes, winner):   # a head that prefers one class whatever the text
        intercept = np.full(len(classes), -5.0, dtype=np.float32)
        intercept[winner] = 5.0
        return H.Head(task, classes, np.zeros((len(classes), models.heads.dim + H.N_FEATURES), np.float32), intercept)

    models = load_models(rules)
    texts = ["Aerolia lost my bag again, great service 🙃", "Merci Lumelle, parfait"]
    two = {task: models.heads.heads[task] for task in ("sentiment", "complaint")}
    models = dataclasses.replace(models, heads=dataclasses.replace(models.heads, heads=two))
    plain = pipeline_predict(Context(rules, models))(texts)
    assert sorted(plain.labels) == ["complaint", "sentiment"] and plain.lang == ["en", "fr"]
    extra = {"irony": always("irony", ("no", "yes"), 1),
             "emotion": always("emotion", ("anger", "joy", "optimism", "sadness"), 2)}
    heads = dataclasses.replace(models.heads, heads={**models.heads.heads, **extra})
    found = pipeline_predict(Context(rules, dataclasses.replace(models, heads=heads)))(texts)
    assert found.labels["irony"].tolist() == [1, 1] and found.labels["emotion"].tolist() == [2, 2]


def test_complaint_f1_is_told_apart_by_language_for_both_heads():
    from types import SimpleNamespace as Labelled

    from pipeline.bench import complaint_f1_by_language

    rows = [{"lang": "en", "complaint": True}, {"lang": "en", "complaint": False},
            {"lang": "fr", "complaint": True}, {"lang": "fr", "complaint": True}]
    labels = [Labelled(complaint=True, intent="complaint"), Labelled(complaint=False, intent="praise"),
              Labelled(complaint=False, intent="complaint"), Labelled(complaint=True, intent="complaint")]
    scores = complaint_f1_by_language(rows, labels, lambda r: r["complaint"])
    assert scores == {"en": {"n": 2, "complaint_head": 100.0, "intent_head": 100.0},
                      "fr": {"n": 2, "complaint_head": 66.7, "intent_head": 100.0}}


def test_the_memory_of_classify_is_measured_in_a_process_of_its_own(tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("brands:\n  - name: Aerolia\n    keywords: [aerolia]\n", encoding="utf-8")
    peak = classify_peak_mb(POSTS, str(rules_file))
    if peak is None:
        pytest.skip("no /proc: the peak is read from the child's /proc/self/status")
    assert 100 < peak < 2500   # the models are loaded, and stay under the issue's ceiling

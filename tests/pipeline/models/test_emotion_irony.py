"""Emotion and irony, when the loaded heads have those tasks: each mention gets its emotion, and an ironic
one loses its praise. Tiny heads are written here, on the n-grams only, so every probability is known."""
import dataclasses
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from pipeline import analytics
from pipeline.models import heads as H
from pipeline.models.encoder import load_encoder
from pipeline.jobs import output_record
from pipeline.mention import Mention
from pipeline.stages import IRONY_THRESHOLD, Context, Models, label, read_irony
from pipeline.store import Store
from pipeline.text import normalise

IDF = np.ones(H.N_FEATURES, dtype=np.float32)
IRONIC = "Great, another three hour delay on my Aerolia flight. Thanks so much"
PLAIN = "Thanks Aerolia, lovely crew and we landed early"
SENTIMENT = [0.1, 0.1, 0.8]                      # negative, neutral, positive: praise, for every text
COMPLAINT = 0.22
EMOTION = [0.1, 0.6, 0.2, 0.1]                   # anger, joy, optimism, sadness
IRONY = {IRONIC: 0.93, PLAIN: 0.2}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _constant(task: str, classes: tuple[str, ...], probabilities: list[float]) -> H.Head:
    """A head that gives every text these probabilities (its intercept alone decides)."""
    if len(classes) == 2:
        coef, intercept = np.zeros((1, H.N_FEATURES)), np.array([_logit(probabilities[1])])
    else:
        coef, intercept = np.zeros((len(classes), H.N_FEATURES)), np.log(probabilities)
    return H.Head(task, classes, coef.astype(np.float32), intercept.astype(np.float32), embedding=False)


def _irony_head() -> H.Head:
    """Logistic weights along the difference of the two texts' n-grams: IRONIC scores 0.93, PLAIN 0.2."""
    ironic, plain = (H.inputs(None, [normalise(t)], IDF).stacked().toarray()[0] for t in (IRONIC, PLAIN))
    overlap = float(ironic @ plain)          # both have length 1: logit(IRONIC) - logit(PLAIN) = 2 s (1 - overlap)
    high, low = _logit(IRONY[IRONIC]), _logit(IRONY[PLAIN])
    scale = (high - low) / (2 * (1 - overlap))
    return H.Head("irony", ("no", "yes"), (scale * (ironic - plain))[None, :].astype(np.float32),
                  np.array([(high + low) / 2], dtype=np.float32), embedding=False)


def _models(folder, tiny_encoder, *, extra: bool) -> Models:
    heads = {"sentiment": _constant("sentiment", ("negative", "neutral", "positive"), SENTIMENT),
             "complaint": _constant("complaint", ("no", "yes"), [1 - COMPLAINT, COMPLAINT])}
    if extra:
        heads["emotion"] = _constant("emotion", ("anger", "joy", "optimism", "sadness"), EMOTION)
        heads["irony"] = _irony_head()
    H.save_heads(folder, str(tiny_encoder), 32, IDF, heads, {"model": "tiny"})
    return Models(load_encoder(str(tiny_encoder), 32, None, "torch"), H.load_heads(folder))


def _mentions() -> list[Mention]:
    posted = datetime(2026, 6, 10, 10, tzinfo=timezone.utc)
    return [Mention("twitter", "1", IRONIC, author="@dan", created_at=posted),
            Mention("twitter", "2", PLAIN, author="@eve", created_at=posted)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_encoder):
    """The two mentions labelled by today's kind of heads (sentiment, complaint) and by heads with emotion and irony."""
    from pipeline.rules import load_rules
    from tests.conftest import ROOT

    rules = load_rules(ROOT / "rules.yaml")
    folder = tmp_path_factory.mktemp("heads")
    return {extra: label(_mentions(), Context(rules, _models(folder / str(extra), tiny_encoder, extra=extra)))
            for extra in (False, True)}


def test_each_mention_gets_its_emotion_and_irony_score(labelled):
    ironic, plain = labelled[True]
    assert (ironic.emotion, ironic.emotion_score) == (plain.emotion, plain.emotion_score) == ("joy", 0.6)
    assert (ironic.irony_score, plain.irony_score) == (0.93, 0.2)
    record = output_record("m1", ironic)          # one line of `ecoute classify`
    assert (record["emotion"], record["emotion_score"], record["irony_score"]) == ("joy", 0.6, 0.93)


def test_an_ironic_mention_loses_its_praise_and_reads_as_a_likelier_complaint(labelled):
    before, after = labelled[False][0], labelled[True][0]
    assert (before.sentiment, before.sentiment_score, before.complaint) == ("positive", 0.8, False)
    moved = SENTIMENT[2] * 0.93
    assert (after.sentiment, after.sentiment_score) == ("negative", pytest.approx(SENTIMENT[0] + moved, abs=1e-4))
    assert after.complaint_score == pytest.approx(1 - (1 - COMPLAINT) * (1 - 0.93 * 0.5), abs=1e-4)
    assert after.complaint_score > before.complaint_score and after.complaint
    assert "ironic 0.93" in after.reasons and not any(r.startswith("ironic") for r in before.reasons)
    assert after.priority > before.priority and after.intent == "complaint" and before.intent == "praise"


def test_a_mention_that_is_not_ironic_keeps_every_label(labelled):
    before, after = labelled[False][1], labelled[True][1]
    assert after.irony_score == 0.2 and not any(r.startswith("ironic") for r in after.reasons)
    assert dataclasses.replace(after, emotion=None, emotion_score=None, irony_score=None) == before


def test_heads_without_emotion_or_irony_leave_those_fields_empty(labelled):
    for out in labelled[False]:
        assert (out.emotion, out.emotion_score, out.irony_score) == (None, None, None)
    assert output_record("m1", labelled[False][0])["emotion"] is None


def test_irony_below_the_threshold_changes_nothing():
    sentiment = np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    complaint = np.array([0.2, 0.6, 0.1])
    irony = np.array([IRONY_THRESHOLD - 1e-4, 0.0, IRONY_THRESHOLD])
    new_sentiment, new_complaint = read_irony(sentiment, complaint, irony)
    assert np.array_equal(new_sentiment[:2], sentiment[:2]) and np.array_equal(new_complaint[:2], complaint[:2])
    p = IRONY_THRESHOLD
    assert new_sentiment[2] == pytest.approx([0.2 + 0.6 * p, 0.2, 0.6 * (1 - p)])
    assert new_complaint[2] == pytest.approx(1 - 0.9 * (1 - p * 0.5))
    assert new_sentiment.sum(axis=1) == pytest.approx([1, 1, 1])
    assert new_sentiment.dtype == new_complaint.dtype == np.float64 and complaint[1] == 0.6   # inputs untouched


def test_emotion_and_irony_are_stored_read_back_and_split_the_trends(labelled, backend_db):
    store = Store(backend_db)
    store.save_mentions(_mentions())
    ironic, plain = labelled[True]
    store.save_labels([ironic, dataclasses.replace(plain, emotion=None, emotion_score=None, irony_score=None)], 3600)
    rows = store.mention_rows().set_index("key")
    assert (rows.loc["twitter:1", "emotion"], rows.loc["twitter:1", "emotion_score"]) == ("joy", 0.6)
    assert rows.loc["twitter:1", "irony_score"] == 0.93 and pd.isna(rows.loc["twitter:2", "emotion"])

    frame = analytics.mentions(db=store).set_index("key")
    assert frame["emotion"].dtype == "string" and frame["emotion_score"].dtype == "float64"
    assert (frame.loc["twitter:1", "emotion"], frame.loc["twitter:1", "irony_score"]) == ("joy", 0.93)
    assert pd.isna(frame.loc["twitter:2", "emotion"]) and pd.isna(frame.loc["twitter:2", "emotion_score"])

    view = analytics.trends(since="2026-06-10", until="2026-06-11", split="emotion", competitors={}, db=store)
    assert view["split"].groupby("emotion")["volume"].sum().to_dict() == {"(none)": 1, "joy": 1}


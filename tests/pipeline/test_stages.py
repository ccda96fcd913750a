import pytest

from pipeline.mention import Mention
from pipeline.stages import STAGES, Context, Stage, check_order, label, load_models


@pytest.fixture(scope="module")
def ctx():
    from pipeline.rules import load_rules
    from tests.conftest import ROOT

    rules = load_rules(ROOT / "rules.yaml")
    return Context(rules, load_models(rules))


def m(i, text, **extra) -> Mention:
    return Mention(source="twitter", source_id=str(i), text=text, **extra)


def test_stages_run_in_an_order_where_every_input_exists():
    check_order()
    names = [s.name for s in STAGES]
    assert names.index("classify") < names.index("infer_intent") < names.index("score_priority")
    swapped = (STAGES[1], STAGES[0], *STAGES[2:])
    check_order(swapped)  # language detection does not need clean text
    with pytest.raises(ValueError, match="stage 'classify' reads \\['clean_text'\\]"):
        check_order((STAGES[3], *STAGES[:3], *STAGES[4:]))


def test_embedded_model_tells_a_complaint_from_praise_and_a_question(ctx):
    out = label([
        m(1, "@aerolia 5 hours delay, missed my connection and NOBODY at the desk. Worst airline ever",
          author="@dan", author_followers=48_000),
        m(2, "Thank you @aerolia, lovely crew and we landed early. Great flight!"),
        m(3, "Est-ce que Lumelle livre en Belgique ?"),
        m(4, "Sorry to hear that, please DM us your booking reference", author="@aerolia_help"),
        m(5, "Lovely new flats at Aerolia Park"),
    ], ctx)
    complaint, praise, question, official, unrelated = out
    assert (complaint.intent, complaint.sentiment, complaint.needs_response) == ("complaint", "negative", True)
    assert "48k followers" in complaint.reasons and complaint.priority > 60
    assert (praise.intent, praise.sentiment, praise.needs_response) == ("praise", "positive", False)
    assert (question.intent, question.lang, question.brands, question.needs_response) == ("question", "fr", ("Lumelle",), True)
    assert official.relevant is False or official.needs_response is False
    assert (unrelated.relevant, unrelated.priority, unrelated.needs_response) == (False, 0, False)
    assert complaint.priority > question.priority > praise.priority


def test_one_bad_mention_is_recorded_and_the_batch_goes_on(ctx, monkeypatch):
    import pipeline.stages as stages

    real = stages.detect_language

    def fragile(text):
        if "boom" in text:
            raise UnicodeError("cannot read this")
        return real(text)

    def fragile_batch(texts):   # the whole batch at once fails on one bad text; the stage goes row by row
        return [fragile(text) for text in texts]

    monkeypatch.setattr(stages, "detect_language", fragile)
    monkeypatch.setattr(stages, "detect_languages", fragile_batch)
    first, second = label([m(1, "boom goes @aerolia"), m(2, "Aerolia lost my bag")], ctx)
    assert first.lang == "und" and first.error == "lang: UnicodeError: cannot read this"
    assert second.error is None and second.lang == "en" and second.brands == ("Aerolia",)


def test_transparency_risks_reach_the_labels_with_their_reasons(ctx):
    promo, accusation, disclosed = label([
        m(21, "Obsessed with my Lumelle glow serum 😍 use my code CAMI20 for -20% !", author="@cami"),
        m(22, "Aerolia's 5-star reviews are fake, they pay people to write them", author="@kim"),
        m(23, "#ad Obsessed with my Lumelle glow serum, use my code CAMI20 for -20%", author="@cami"),
    ], ctx)
    assert promo.transparency == ("undisclosed_promotion",)
    assert any("CAMI20" in r and "no disclosure marker" in r for r in promo.reasons)
    assert accusation.transparency == ("deception_accusation",) and accusation.needs_response
    assert any(r.startswith("deception accusation: ") for r in accusation.reasons)
    assert disclosed.transparency == ()
    assert accusation.priority > disclosed.priority

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
    with pytest.raises(ValueError, match="stage 'classify' reads \\['clean_text', 'brands'\\]"):
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
    heads = ctx.models.heads.heads     # emotion and irony only where the shipped heads have those tasks
    assert all((o.emotion is None, o.irony_score is None) == ("emotion" not in heads, "irony" not in heads)
               for o in out)


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


class _Reads:
    """Wraps a function that reads text: records the longest text it was given, and answers `refuse` for a
    text over `cap` without reading it (uncapped, a 1 MB post would take minutes before the test failed)."""

    def __init__(self, fn, cap, refuse, arg=0):
        self.fn, self.cap, self.refuse, self.arg, self.longest = fn, cap, refuse, arg, 0

    def __call__(self, *args, **kwargs):
        given = args[self.arg]
        lengths = [len(given)] if isinstance(given, str) else [len(t) for t in given]
        self.longest = max([self.longest, *lengths])
        if max(lengths, default=0) > self.cap:
            return self.refuse(*args, **kwargs)
        return self.fn(*args, **kwargs)

    def __getattr__(self, name):   # a tokenizer's pad_token_id and the like
        return getattr(self.fn, name)


def test_each_stage_reads_at_most_its_cap_of_a_one_megabyte_post(ctx, monkeypatch):
    import pipeline.models.encoder as encoder
    import pipeline.models.heads as heads
    import pipeline.text as text
    import pipeline.alerts.transparency as transparency

    detector, tokenizer = text._detector(), ctx.models.encoder.tokenizer
    reads = {
        "detection": _Reads(detector.detect_languages_in_parallel_of, text.DETECTION_CHARS,
                            lambda ts: [None] * len(ts)),
        "tokenizer": _Reads(tokenizer, ctx.models.encoder.max_length * encoder.CHARS_PER_TOKEN,
                            lambda texts, **options: tokenizer([" "] * len(texts), **options)),
        "n-grams": _Reads(heads._hasher(None).word_ngrams, heads.NGRAM_CHARS, lambda t: []),
        "promo codes": _Reads(transparency.promo_codes, transparency.CUE_CHARS, lambda t: []),
        "accusations": _Reads(transparency.accused_pair, transparency.CUE_CHARS, lambda t, c: None),
    }
    monkeypatch.setattr(text, "_detector", lambda: type("D", (), {"detect_languages_in_parallel_of": reads["detection"]}))
    monkeypatch.setattr(ctx.models.encoder, "tokenizer", reads["tokenizer"])
    monkeypatch.setattr(heads._hasher(None), "word_ngrams", reads["n-grams"])
    monkeypatch.setattr(transparency, "promo_codes", reads["promo codes"])
    monkeypatch.setattr(transparency, "accused_pair", reads["accusations"])
    heads._recent_counts.clear(), heads._recent_tfidf.clear()

    huge = "x" * 1_000_000 + " Aerolia"   # brands are still found in the whole post
    flood = "Lumelle: use my code CAMI20 and their reviews are fake " * 20_000
    big, promo, small = label([m(91, huge), m(92, flood, author="@cami"), m(93, "Aerolia lost my bag")], ctx)
    assert {name: (wrapped.longest, wrapped.cap) for name, wrapped in reads.items()
            if not 0 < wrapped.longest <= wrapped.cap} == {}   # each read the post, and at most its cap
    assert (big.error, big.brands) == (None, ("Aerolia",))
    assert (promo.error, promo.brands) == (None, ("Lumelle",))
    assert promo.transparency == ("undisclosed_promotion", "deception_accusation")
    assert (small.error, small.lang, small.brands) == (None, "en", ("Aerolia",))


def test_the_models_read_a_huge_post_from_its_start():
    from pipeline.text import MODEL_TEXT_CHARS, normalise

    assert normalise("Aerolia lost my bag " + "😡" * 1_000_000).startswith("Aerolia lost my bag enraged face")
    assert len(normalise("x" * 1_000_000)) == MODEL_TEXT_CHARS


def test_the_model_cards_say_how_much_of_a_post_each_stage_reads():
    import json

    from pipeline.stages import reading_limits
    from tests.conftest import ROOT

    for card in ("pipeline/models/heads/card.json", "pipeline/models/heads_extra/card.json"):
        limits = json.loads((ROOT / card).read_text(encoding="utf-8"))["limits"]
        assert limits.endswith(reading_limits(128)), card
    assert "the first 1,000 letters" in reading_limits(128) and "2,048 characters" in reading_limits(128)

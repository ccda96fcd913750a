"""Language coverage is explicit: every language the detector can answer is in one table, and a mention in a
language the sentiment heads were not measured on says so in its reasons."""
import pytest

from pipeline.models.languages import COVERAGE, TRAINED, TRANSFERRED, UMSAB, language_reason, measured_languages
from pipeline.mention import Mention
from pipeline.text import detector_languages


@pytest.fixture(scope="module")
def ctx():
    from pipeline.rules import load_rules
    from pipeline.stages import Context, load_models
    from tests.conftest import ROOT

    rules = load_rules(ROOT / "rules.yaml")
    return Context(rules, load_models(rules))


def test_the_table_covers_every_language_the_detector_can_answer():
    assert sorted(COVERAGE) == sorted(detector_languages())
    for lang, tasks in COVERAGE.items():
        assert set(tasks) == {"sentiment", "complaint", "irony", "emotion"}
        assert all(how in (TRAINED, TRANSFERRED) or how.startswith("fallback: ") for how in tasks.values()), lang
    assert [lang for lang, tasks in COVERAGE.items() if tasks["sentiment"] == TRAINED] == list(UMSAB)
    assert [lang for lang, tasks in COVERAGE.items() if tasks["complaint"] == TRAINED] == ["en"]


def test_a_dutch_mention_says_its_language_was_not_measured_and_english_and_french_ones_do_not(ctx):
    from pipeline.stages import label

    dutch, english, french, given, unknown = label([
        Mention("twitter", "1", "Aerolia is mijn koffer weer kwijt, waardeloze klantenservice"),
        Mention("twitter", "2", "Aerolia lost my suitcase again, useless customer service"),
        Mention("twitter", "3", "Aerolia a encore perdu ma valise, service client nul"),
        Mention("twitter", "4", "Aerolia lost my suitcase again", lang="sv"),   # the platform's language is kept
        Mention("twitter", "5", "👍 @aerolia"),
    ], ctx)
    assert (dutch.lang, english.lang, french.lang) == ("nl", "en", "fr")
    assert "language nl not measured" in dutch.reasons
    assert not any(r.startswith("language") for r in english.reasons + french.reasons)
    assert "language sv not measured" in given.reasons      # the shipped heads: the eight UMSAB languages
    assert "language unknown" in unknown.reasons


def test_the_measured_languages_come_from_the_heads_card():
    eight = ["ar", "de", "en", "es", "fr", "hi", "it", "pt"]
    card = {"languages": {"sentiment": eight, "complaint": ["en"]}}
    assert measured_languages(card) == tuple(eight) and measured_languages(card, "complaint") == ("en",)
    assert measured_languages({}) == ("en", "fr")          # heads trained before cards named their languages
    assert language_reason("de", measured_languages(card)) is None
    assert language_reason("de", measured_languages({})) == "language de not measured"
    assert language_reason("pt-BR", ("pt",)) is None
    assert language_reason("und", ("en",)) == language_reason(None, ("en",)) == "language unknown"
    assert language_reason("<b>x</b>", ("en",)) == "language unknown"   # a platform's odd value is not echoed

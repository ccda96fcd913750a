"""Reply templates: picked by intent, category and language (the customer's first, then English),
placeholders checked when rules.yaml is loaded, rendered for a case."""
import pytest

from pipeline.rules import CATEGORIES, INTENTS, RulesError, parse_rules
from pipeline.desk.templates import Template, TemplateError, render, templates_for

HEAD = "brands:\n  - name: Aerolia\n    keywords: [aerolia]\ntemplates:\n"


def rules_with(templates: str):
    return parse_rules(HEAD + templates)


def test_the_most_specific_template_in_the_customers_language_comes_first(rules):
    delay_fr = templates_for(rules, "complaint", "delays", "fr")
    assert [t.name for t in delay_fr] == ["Delay or cancellation", "Complaint", "Follow-up"]
    assert delay_fr[0].text.startswith("Bonjour {author}")
    assert templates_for(rules, "complaint", "delivery", "en")[0] == Template(
        "Delivery", next(t.text for t in rules.templates if (t.name, t.lang) == ("Delivery", "en")))


def test_a_language_without_templates_falls_back_to_english_and_an_intent_without_to_generic(rules):
    german = templates_for(rules, "complaint", "refunds", "de")
    assert [t.name for t in german] == ["Billing or refund", "Complaint", "Follow-up"]
    assert all(t.text.startswith("Hi {author}") for t in german)
    assert [t.name for t in templates_for(rules, "other", None, "fr")] == ["Follow-up"]
    assert [t.name for t in templates_for(rules, "praise", None, None)] == ["Thanks", "Follow-up"]


def test_templates_for_any_language_rank_between_the_customers_and_english():
    rules = rules_with("  - {name: en-generic, lang: en, text: Hi}\n"
                       "  - {name: any-complaint, intent: complaint, text: Sorry}\n"
                       "  - {name: fr-generic, lang: fr, text: Bonjour}\n")
    assert [t.name for t in templates_for(rules, "complaint", "delivery", "fr")] == [
        "fr-generic", "any-complaint", "en-generic"]
    assert templates_for(rules, "praise", None, "es") == [Template("en-generic", "Hi")]


def test_render_fills_author_brand_and_case_and_keeps_literal_braces():
    text = "Hi {author}, {brand} here {{not a placeholder}} (case {case})"
    assert render(text, "@dan", "Aerolia", 42) == "Hi @dan, Aerolia here {not a placeholder} (case 42)"
    with pytest.raises(TemplateError, match=r"unknown placeholder \{name\}; placeholders are \{author\}"):
        render("Hi {name}", "@dan", "Aerolia", 42)


@pytest.mark.parametrize("text, message", [
    ("Hi {autor}", r"rules.yaml:6 templates\[0\].text: unknown placeholder \{autor\} \(did you mean \{author\}\?\)"),
    ("Hi {author!r}", r"rules.yaml:6 templates\[0\].text: placeholder \{author\} takes no format"),
    ("50% off {", r"rules.yaml:6 templates\[0\].text: Single '\{' encountered .*write \{\{ and \}\}"),
])
def test_a_bad_placeholder_is_refused_at_load_time_with_its_line(text, message):
    with pytest.raises(RulesError, match=message):
        rules_with(f"  - name: t\n    text: \"{text}\"\n")


def test_template_fields_are_checked_like_every_other_section():
    with pytest.raises(RulesError, match=r"rules.yaml:5 templates\[0\].intent: Input should be 'complaint', "):
        rules_with("  - {name: t, intent: rant, text: x}\n")
    with pytest.raises(RulesError, match=r"templates\[0\]: a 'category' is only given to complaints"):
        rules_with("  - {name: t, intent: praise, category: delivery, text: x}\n")
    with pytest.raises(RulesError, match=r"template names must be unique per language, repeated: t \(en\)"):
        rules_with("  - {name: t, lang: en, text: x}\n  - {name: t, lang: en, text: y}\n")
    with pytest.raises(RulesError, match=r"templates\[0\].lang: String should match pattern"):
        rules_with("  - {name: t, lang: English, text: x}\n")


def test_the_shipped_templates_cover_every_intent_and_category_in_english_and_french_and_fit_a_tweet(rules):
    from pipeline.models import intents

    assert (INTENTS, CATEGORIES) == (intents.INTENTS, intents.CATEGORIES)
    for lang in ("en", "fr"):
        for intent in INTENTS:
            for category in (CATEGORIES if intent == "complaint" else (None,)):
                found = templates_for(rules, intent, category, lang)
                assert found, (intent, category, lang)
                assert all(len(render(t.text, "@fifteen_chars__", "Aerolia", 123456)) <= 280 for t in found)

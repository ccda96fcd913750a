"""Reply templates for the desk: pick the ones that fit a case, fill in its placeholders.

Templates live in rules.yaml (`templates:`), each with optional `intent`, `category` and `lang`;
rules loading already refused any placeholder other than {author}, {brand} and {case}.
`templates_for` puts the customer's language first (then templates for any language, then English
as the fallback), and within a language the most specific first: intent and category, intent only,
then generic ones. Of templates sharing a name (translations of one reply), only the best is offered.
"""
from __future__ import annotations

from typing import NamedTuple

from pipeline.rules import Rules, template_fields

FALLBACK_LANG = "en"


class Template(NamedTuple):
    name: str
    text: str


class TemplateError(ValueError):
    """A template text that cannot be rendered (an unknown placeholder, a stray brace)."""


def templates_for(rules: Rules, intent: str | None, category: str | None, lang: str | None,
                  suggested: str | None = None) -> list[Template]:
    """Templates that fit a case, best first; an empty list when none does. `suggested` (the template an
    automation set on the case) comes first, in the case's language when it has that translation."""
    if suggested:
        own = _translation(rules, suggested, lang)
        rest = [t for t in templates_for(rules, intent, category, lang) if t.name != suggested]
        return ([own] if own else []) + rest
    lang = (lang or "").lower() or None
    ranked = []
    for order, spec in enumerate(rules.templates):
        if spec.intent not in (None, intent) or spec.category not in (None, category):
            continue
        if spec.lang is not None and spec.lang not in (lang, FALLBACK_LANG):
            continue
        language = 0 if (spec.lang == lang and lang) else 1 if spec.lang is None else 2
        specificity = -((spec.intent is not None) + (spec.category is not None))
        ranked.append(((language, specificity, order), Template(spec.name, spec.text)))
    best: dict[str, Template] = {}   # one per name: a French case gets the French 'Delivery', not both
    for _, template in sorted(ranked, key=lambda pair: pair[0]):
        best.setdefault(template.name, template)
    return list(best.values())


def _translation(rules: Rules, name: str, lang: str | None) -> Template | None:
    """The template of that name in the case's language, else for any language, else English, else any."""
    lang = (lang or "").lower() or None
    named = [spec for spec in rules.templates if spec.name == name]
    for wanted in (lang, None, FALLBACK_LANG):
        spec = next((s for s in named if s.lang == wanted), None)
        if spec is not None:
            return Template(spec.name, spec.text)
    return Template(named[0].name, named[0].text) if named else None


def render(template_text: str, author: str | None, brand: str | None, case: int | str | None) -> str:
    """The template with {author}, {brand} and {case} filled in ({{ and }} are literal braces)."""
    try:
        template_fields(template_text)
    except ValueError as exc:
        raise TemplateError(str(exc)) from None
    values = {"author": (author or "").strip(), "brand": (brand or "").strip(),
              "case": "" if case is None else str(case)}
    return template_text.format_map(values)

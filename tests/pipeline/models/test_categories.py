"""A brand's own complaint categories (rules.yaml `categories`), learned from a few examples when the rules load."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.models.categories import OTHER, category_key, fit_head, lookalike_warnings
from pipeline.cli import main
from pipeline.mention import Mention
from pipeline.rules import CATEGORIES, load_rules, parse_rules
from pipeline.stages import Context, label, load_models
from tests.conftest import ROOT

LUGGAGE_AND_DELAYS = """
  - name: luggage
    description: bags lost, delayed or damaged
    examples: ["my suitcase never arrived", "valise cassée à l'arrivée", "bag still missing after 3 days",
               "mes bagages sont perdus depuis mardi", "the airline lost my luggage"]
  - name: delays
    description: late or cancelled flights, missed connections
    examples: ["flight delayed 5 hours", "vol annulé sans prévenir", "we missed our connection, the plane left late",
               "encore trois heures de retard", "they cancelled my flight last minute"]
"""
BRANDS = """
brands:
  - name: Aerolia
    keywords: [aerolia]
  - name: Lumelle
    keywords: [lumelle]
"""
LUMELLE_OWN = """
    categories:
      - name: skin_reaction
        description: redness, itching, burns or allergy after using a product
        examples: ["this cream gave me a rash", "ma peau brûle depuis que j'utilise ce sérum", "my face is red and itchy"]
      - name: delivery
        description: parcels late, lost or damaged in transit
        examples: ["my order never arrived", "colis abîmé à la livraison", "package lost for two weeks"]
"""


@pytest.fixture(scope="module")
def models():
    return load_models(load_rules(ROOT / "rules.yaml"))


def categories_of(rules_text: str, models, texts: list[str]) -> list[str | None]:
    rules = parse_rules(rules_text, "rules.yaml")
    mentions = [Mention("test", str(i), text) for i, text in enumerate(texts)]
    found = label(mentions, Context(rules, models))
    assert [m.intent for m in found] == ["complaint"] * len(texts), "these posts are plain complaints"
    return [m.category for m in found]


def test_categories_named_from_english_and_french_examples(models):
    rules = BRANDS + "categories:" + LUGGAGE_AND_DELAYS
    assert categories_of(rules, models, [
        "@aerolia ma valise n'est toujours pas arrivée, trois jours sans nouvelles, c'est inadmissible",
        "@aerolia my flight is delayed again, four hours at the gate and nobody tells us anything",
        "@aerolia my bag came back torn open and half my things are gone",
        "@aerolia vol annulé la veille du départ, aucun remboursement proposé, honteux",
    ]) == ["luggage", "delays", "luggage", "delays"]


def test_a_brands_own_categories_win_over_the_shared_ones(models):
    rules = BRANDS.replace("keywords: [lumelle]", "keywords: [lumelle]" + LUMELLE_OWN) + "categories:" + LUGGAGE_AND_DELAYS
    assert categories_of(rules, models, [
        "Lumelle's new serum burned my cheeks, my skin is red and itchy since yesterday, terrible",
        "@aerolia still no sign of my suitcase after 4 days, lost luggage again, terrible service",
    ]) == ["skin_reaction", "luggage"]


def test_the_built_in_list_without_categories(models):
    (found,) = categories_of(BRANDS, models, ["@aerolia my flight was cancelled and nobody refunded me, disgraceful"])
    assert found in CATEGORIES


def test_a_complaint_that_fits_no_category_gets_other(models):
    rules = parse_rules(BRANDS + "categories:" + LUGGAGE_AND_DELAYS, "rules.yaml")
    from pipeline.models.categories import category_encoder, name_categories

    encoder = category_encoder(models.encoder)
    texts = ["the lipstick shade is nothing like the photo, and it smells of plastic",
             "my suitcase never arrived, still missing after a week"]
    named = name_categories(rules, encoder, encoder.encode(texts), ["Aerolia", "Aerolia"])
    assert named == [OTHER, "luggage"]
    assert OTHER in rules.category_names()   # so the dashboard's filter and automations can name it


def test_rules_check_warns_about_examples_that_look_alike(tmp_path):
    lookalike = LUGGAGE_AND_DELAYS.replace('"the airline lost my luggage"', '"my flight was delayed five hours"')
    path = tmp_path / "rules.yaml"
    path.write_text(BRANDS + "categories:" + lookalike, encoding="utf-8")
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 0, result.output
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "my flight was delayed five" in text)
    assert (f"{path}:{line} categories[0].examples[4]: warning: 'my flight was delayed five hours' looks like "
            f"delays' 'flight delayed 5 hours'") in result.output
    assert result.output.count("warning:") == 1    # the pair once, not once from each side


def test_rules_check_is_quiet_about_distinct_examples(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BRANDS + "categories:" + LUGGAGE_AND_DELAYS, encoding="utf-8")
    assert lookalike_warnings(load_rules(path), path) == []


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.texts = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, batch_size=32):
        self.texts += len(texts)
        return self.inner.encode(texts, batch_size)


def test_a_restart_does_not_embed_the_examples_again(models, tmp_path, monkeypatch):
    monkeypatch.setenv("ECOUTE_CACHE", str(tmp_path))
    key = category_key(parse_rules(BRANDS + "categories:" + LUGGAGE_AND_DELAYS, "r.yaml").categories)
    encoder = CountingEncoder(models.encoder)
    fit_head.cache_clear()
    first = fit_head(key, encoder)
    assert encoder.texts == 12          # two descriptions, ten examples
    fit_head.cache_clear()              # a new process: only the disk cache is left
    again = fit_head(key, encoder)
    assert encoder.texts == 12 and (again.centroids == first.centroids).all()
    changed = key[:1] + ((key[1][0], key[1][1], key[1][2] + ("stuck on the tarmac for two hours",)),)
    fit_head(changed, encoder)
    assert encoder.texts == 12 + 13     # another example: embedded anew


def test_ecoute_classify_writes_the_categorys_name(tmp_path):
    import json

    from tests.conftest import write_jsonl

    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": "@aerolia my suitcase is still missing after 3 days, nobody at baggage claim helps"},
        {"id": "b", "text": "@aerolia vol AE220 annulé sans explication, on dort par terre à l'aéroport"},
    ])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["classify", str(source), "-o", str(out), "--rules",
                                       str(ROOT / "tests" / "data" / "airline_categories.yaml")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["intent"], r["category"]) for r in lines] == [("complaint", "luggage"), ("complaint", "delays")]


def test_the_shipped_heads_name_categories_without_a_second_encoder(models, monkeypatch, tmp_path):
    """The shipped adapter changes e5's top 6 layers only: the categories read the bare model's top layers over
    the state classify kept after layer 6; no bare encoder is loaded beside the pipeline's, and the complaints
    are not encoded again (only the categories' 12 texts are, into an empty cache)."""
    import pipeline.models.encoder
    from pipeline.models.categories import BareTopEncoder

    def second_encoder(*args, **kwargs):
        raise AssertionError(f"a second encoder was loaded: {args}")

    assert models.encoder.shared_layers == 6
    monkeypatch.setattr(pipeline.models.encoder, "load_encoder", second_encoder)
    monkeypatch.setenv("ECOUTE_CACHE", str(tmp_path))
    encoded = []
    whole_pass = BareTopEncoder.encode
    monkeypatch.setattr(BareTopEncoder, "encode", lambda self, texts, *a: encoded.extend(texts) or
                        whole_pass(self, texts, *a))
    fit_head.cache_clear()
    assert categories_of(BRANDS + "categories:" + LUGGAGE_AND_DELAYS, models, [
        "@aerolia my bag came back torn open and half my things are gone",
        "@aerolia vol annulé la veille du départ, aucun remboursement proposé, honteux",
    ]) == ["luggage", "delays"]
    assert len(encoded) == 12 and "aerolia" not in " ".join(encoded)
    fit_head.cache_clear()   # the heads fitted here live in tmp_path's cache only


def test_the_category_vectors_are_the_bare_encoders(models):
    """What the split computes is what a second, bare encoder would: cosine 0.99 and more in int8."""
    from pipeline.models.categories import category_encoder
    from pipeline.models.encoder import load_encoder

    texts = ["my suitcase never arrived", "vol annulé sans prévenir", "the lipstick smells of plastic",
             "Der Zug ist schon wieder zu spät", "refund still not here after 6 weeks", "merci pour rien"]
    encoder = models.encoder
    bare = load_encoder(encoder.name, encoder.max_length, None, encoder.backend).encode(texts)
    assert ((category_encoder(encoder).encode(texts) * bare).sum(axis=1) > 0.99).all()

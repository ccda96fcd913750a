import pytest

from pipeline.rules import RulesError, load_rules, parse_rules

VALID = """\
brands:
  - name: Acme
    keywords: [acme]
"""


def test_the_shipped_example_is_valid_and_has_two_brands(rules):
    assert [b.name for b in rules.brands] == ["Aerolia", "Lumelle"]
    assert rules.queue.first_response_sla.total_seconds() == 3600
    assert rules.brand("Lumelle").owned_domains == ["lumelle.fr", "peau-naturelle-avis.fr"]


def test_defaults_fill_what_is_left_out():
    rules = parse_rules(VALID)
    assert rules.models.encoder == "embedded" and rules.sources == [] and rules.goals == []


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as err:
        parse_rules(text, "rules.yaml")
    return err.value.problems


def test_misspelled_field_names_line_path_and_suggestion():
    text = VALID + "    competitor: [Roadrunner]\n"
    [problem] = problems(text)
    assert problem.startswith("rules.yaml:4 brands[0].competitor: unknown field (did you mean 'competitors'?)")


def test_wrong_type_names_line_path_and_value():
    text = "brands:\n  - name: Acme\n    keywords: acme\n"
    [problem] = problems(text)
    assert problem == "rules.yaml:3 brands[0].keywords: expected a list of strings, got 'acme'"


def test_bad_duration_and_bad_choice_are_located():
    text = VALID + "queue:\n  first_response_sla: soon\nsources:\n  - name: s\n    type: myspace\n"
    found = problems(text)
    assert any(p.startswith("rules.yaml:5 queue.first_response_sla: expected a duration") for p in found)
    assert any(p.startswith("rules.yaml:8 sources[0].type:") and "'rss'" in p for p in found)


def test_missing_required_field_and_per_type_needs():
    found = problems("brands:\n  - name: Acme\nsources:\n  - name: news\n    type: rss\n")
    assert "rules.yaml:2 brands[0].keywords: required field is missing" in found
    assert any(p.startswith("rules.yaml:4 sources[0]: a 'rss' source needs 'url'") for p in found)


def test_broken_yaml_and_missing_file(tmp_path):
    [problem] = problems("brands: [\n")
    assert problem.startswith("rules.yaml:2: not valid YAML")
    with pytest.raises(RulesError, match="cannot read rules"):
        load_rules(tmp_path / "nope.yaml")

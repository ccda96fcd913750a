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


def billion_laughs(levels: int) -> str:
    """Each anchor repeats the one before nine times: `levels` lines stand for 9**levels strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nbrands:\n  - name: Acme\n    keywords: *a{levels - 1}\n"


def test_a_billion_laughs_file_is_refused_in_one_short_line(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    path = tmp_path / "rules.yaml"
    path.write_text(billion_laughs(6), encoding="utf-8")   # 531,441 strings behind 8 lines
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert len(result.output) < 300, result.output[:300]
    assert result.output.startswith(f"{path}:6: aliases expand to ")   # a5, the first anchor over the limit
    assert "write the values out" in result.output


def test_an_alias_that_contains_itself_is_refused_with_its_line():
    assert problems(VALID + "    competitors: &loop [Roadrunner, *loop]\n") == [
        "rules.yaml:4: an alias refers to the value that contains it"]


def test_anchors_within_reason_still_work():
    rules = parse_rules("brands:\n  - name: Acme\n    keywords: &words [acme, acme corp]\n    exclude: *words\n")
    assert rules.brands[0].exclude == ["acme", "acme corp"]


def test_an_error_shows_a_bounded_picture_of_a_huge_value():
    long_value, = problems(f"brands:\n  - name: Acme\n    keywords: '{'a' * 1_000_000}'\n")
    assert long_value.startswith("rules.yaml:3 brands[0].keywords: expected a list of strings, got 'aaa")
    assert len(long_value) < 200
    many = problems("brands:\n  - name: Acme\n    keywords: [" + ", ".join(["[1]"] * 500) + "]\n")
    assert len(many) == 101 and many[-1] == "rules.yaml: … and 400 more problems"
    assert all(len(p) < 200 for p in many)

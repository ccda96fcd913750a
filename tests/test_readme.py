"""A command, flag or rules.yaml key that users cannot find in the README or its manual (docs/) does not exist for them."""
import click

from pipeline.cli import main
from pipeline.rules import Rules
from tests.conftest import ROOT

README = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "README.md", ROOT / "docs" / "manual.md"))


def commands(group: click.Group, prefix: str = "ecoute"):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def test_every_command_and_flag_is_documented():
    for name, command in commands(main):
        assert f"`{name}" in README, name
        for param in command.params:
            for flag in getattr(param, "opts", []):
                if flag.startswith("--") and flag != "--help":
                    assert flag in README, f"{name} {flag}"


def test_every_rules_key_is_documented():
    def keys(model):
        for name, field in model.model_fields.items():
            yield name
            for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    yield from keys(arg)

    for key in keys(Rules):
        assert f"`{key}`" in README, key

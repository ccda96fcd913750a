"""A command, flag or rules.yaml key that users cannot find in the README or its docs/ does not exist for them;
a module the README's map leaves out is a room nobody finds; a README past one screenful stops being a front door."""
import re

import click

from pipeline.cli import main
from pipeline.rules import Rules
from tests.conftest import ROOT

README_MD = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
README = "\n".join([README_MD, *(path.read_text(encoding="utf-8") for path in DOCS)])
README_LIMIT = 12_000


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


def test_readme_stays_a_front_door():
    assert DOCS, "docs/ has no .md files"
    assert len(README_MD) < README_LIMIT, f"README.md is {len(README_MD):,} characters; keep it under {README_LIMIT:,} (move detail to docs/)"


# listeners/, pipeline/ and every wing of pipeline/ (its packages; migrations/ is Alembic's, listed by folder only).
# A wing's __init__.py is described on its folder's line.
MAPPED_FOLDERS = ("listeners", "pipeline", *sorted(init.parent.relative_to(ROOT).as_posix()
                                                   for init in (ROOT / "pipeline").glob("*/__init__.py")
                                                   if init.parent.name != "migrations"))


def module_map() -> set[str]:
    """The README's module map: the fenced block that lists `listeners/` and `pipeline/`, read as folder/module.py
    (a wing such as `pipeline/models/` is a folder line of its own, its modules indented below it)."""
    for block in re.findall(r"^```\w*\n(.*?)^```", README_MD, flags=re.S | re.M):
        if re.search(r"^listeners/", block, flags=re.M) and re.search(r"^pipeline/", block, flags=re.M):
            named, folder = set(), None
            for line in block.splitlines():
                top = re.match(r"(\S+)/\s", line + " ")
                if top:
                    folder = top.group(1)
                module = re.match(r"\s+(\w+\.py)\s", line + " ")
                if module and folder:
                    named.add(f"{folder}/{module.group(1)}")
            return named
    raise AssertionError("README.md has no module map (a code block listing listeners/ and pipeline/)")


def test_module_map_names_every_module():
    named = module_map()
    modules = {f"{folder}/{path.name}" for folder in MAPPED_FOLDERS
               for path in (ROOT / folder).glob("*.py") if path.name != "__init__.py"}
    assert sorted(modules - named) == [], "modules missing from README.md's module map"
    assert sorted(named - modules) == [], "README.md's module map names modules that do not exist"


def test_module_map_names_every_dashboard_page():
    """ui/ is one line of the map: the dashboard's page modules named by their stems, and common.py."""
    block = next(b for b in re.findall(r"^```\w*\n(.*?)^```", README_MD, flags=re.S | re.M)
                 if re.search(r"^listeners/", b, flags=re.M) and re.search(r"^pipeline/", b, flags=re.M))
    line = next((line for line in block.splitlines() if line.startswith("ui/")), "")
    missing = [path.name for path in sorted((ROOT / "ui").glob("*.py"))
               if path.name != "__init__.py" and not re.search(rf"\b{path.stem}\b", line)]
    assert line and missing == [], f"README.md's module map has no ui/ line naming {missing}"

"""Automations edited in place in rules.yaml (the dashboard's Rules page): the file is changed with
ruamel.yaml's round trip, so its comments, order, quoting and layout stay as the admin wrote them, and
the result is validated with `parse_rules` before anything is written (the caller writes it).

A form works in text fields: lists are comma-separated, empty fields are left out of the file.
"""
from __future__ import annotations

import io
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from pipeline.rules import Automation, Rules

WHEN_LISTS = ("brand", "source", "lang", "intent", "category", "severity", "sentiment", "transparency",
              "keywords", "authors")
WHEN_NUMBERS = ("min_priority", "min_followers")
THEN_TEXTS = ("assign_team", "assign", "template", "dismiss")
THEN_LISTS = ("tag", "notify")
ONE_OR_MANY = {"brand", "source", "lang", "intent", "category", "severity", "sentiment", "transparency", "tag"}


class EditError(Exception):
    """The edit cannot be made (a name that is taken, an automation that is gone); says which."""


def automation_rows(rules: Rules) -> pd.DataFrame:
    """One row per automation, in file order: name, enabled, and its conditions and actions as text."""
    return pd.DataFrame([{"name": a.name, "enabled": a.enabled, "when": conditions_text(a),
                          "then": actions_text(a)} for a in rules.automations],
                        columns=["name", "enabled", "when", "then"])


def conditions_text(auto: Automation) -> str:
    """'brand: Aerolia; lang: fr, de' (every new case when none is given)."""
    return _summary(auto.when.model_dump(exclude_defaults=True)) or "every new case"


def actions_text(auto: Automation) -> str:
    return _summary(auto.then.model_dump(exclude_defaults=True))


def _summary(values: dict[str, Any]) -> str:
    return "; ".join(f"{key}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for key, v in values.items())


def form_values(auto: Automation | None) -> dict[str, Any]:
    """An automation as the form shows it: lists joined by commas, absent values empty."""
    when = auto.when.model_dump() if auto else {}
    then = auto.then.model_dump() if auto else {}
    out: dict[str, Any] = {"name": auto.name if auto else "", "enabled": auto.enabled if auto else True}
    out.update({key: ", ".join(when.get(key) or []) for key in WHEN_LISTS})
    out.update({key: when.get(key) for key in WHEN_NUMBERS})
    out.update({key: then.get(key) or "" for key in THEN_TEXTS})
    out.update({key: ", ".join(then.get(key) or []) for key in THEN_LISTS})
    out["priority"] = then.get("priority") or 0
    return out


def entry_from_form(values: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as the automation's YAML mapping: name, enabled (only when false), when, then."""
    when = {key: _items(values.get(key)) for key in WHEN_LISTS}
    when.update({key: values.get(key) for key in WHEN_NUMBERS})
    then = {key: (values.get(key) or "").strip() for key in THEN_TEXTS}
    then.update({key: _items(values.get(key)) for key in THEN_LISTS})
    then["priority"] = int(values.get("priority") or 0)
    entry: dict[str, Any] = {"name": (values.get("name") or "").strip()}
    if not values.get("enabled", True):
        entry["enabled"] = False
    entry["when"] = {k: _one(k, v) for k, v in when.items() if v not in (None, [], "")}
    entry["then"] = {k: _one(k, v) for k, v in then.items() if v not in (None, [], "", 0)}
    return entry


def _items(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _one(key: str, value: Any) -> Any:
    """A one-item list is written as its item where the rules take either (`lang: fr`), as people write it."""
    return value[0] if key in ONE_OR_MANY and isinstance(value, list) and len(value) == 1 else value


def with_automation(text: str, entry: dict[str, Any], replacing: str | None = None) -> str:
    """rules.yaml's text with `entry` added at the end of `automations:` (created when missing), or put in
    place of the automation named `replacing`; everything else as it was."""
    yaml, data = _load(text)
    autos = data.get("automations")
    if autos is None:
        autos = data["automations"] = CommentedSeq()
    names = [a.get("name") for a in autos]
    if entry["name"] in names and entry["name"] != replacing:
        raise EditError(f"an automation named {entry['name']!r} already exists: choose another name")
    if replacing is None:
        autos.append(_flow_entry(entry))
    elif replacing in names:
        _update(autos[names.index(replacing)], _flow_entry(entry))
    else:
        raise EditError(f"no automation named {replacing!r} in the file any more: reload the page")
    return _dump(yaml, data)


def _update(node: CommentedMap, new: CommentedMap) -> None:
    """The automation's keys replaced in place: the comments written around it stay."""
    for key in [k for k in node if k not in new]:
        del node[key]
    for position, (key, value) in enumerate(new.items()):
        if key in node:
            node[key] = value
        else:
            node.insert(position, key, value)


def with_enabled(text: str, name: str, enabled: bool) -> str:
    """rules.yaml's text with the named automation switched on or off (`enabled: false`, or no key)."""
    yaml, data = _load(text)
    auto = next((a for a in data.get("automations") or [] if a.get("name") == name), None)
    if auto is None:
        raise EditError(f"no automation named {name!r} in the file any more: reload the page")
    if enabled:
        auto.pop("enabled", None)
    elif "enabled" in auto:
        auto["enabled"] = False
    else:
        auto.insert(1, "enabled", False)
    return _dump(yaml, data)


def _flow_entry(entry: dict[str, Any]) -> CommentedMap:
    """`when` and `then` on one line each, as the example rules write them."""
    node = CommentedMap()
    for key, value in entry.items():
        if isinstance(value, dict):
            inner = CommentedMap(value)
            inner.fa.set_flow_style()
            node[key] = inner
        else:
            node[key] = value
    return node


def _load(text: str) -> tuple[YAML, Any]:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096                              # never re-wrap a long template line
    yaml.indent(mapping=2, sequence=4, offset=2)   # `  - name:` under a key, as rules.yaml is written
    data = yaml.load(text)
    if not isinstance(data, dict):
        raise EditError("rules.yaml is not a mapping: fix it in the editor below first")
    return yaml, data


def _dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()

"""What every command family shares: the --db and --rules help, and rules, models and store opened or a
ClickException that says what to fix."""
from __future__ import annotations

import os

import click

from pipeline.rules import RulesError, load_rules

DB_HELP = "Store: a SQLite file path or a SQLAlchemy URL (default: $ECOUTE_DB, else ./ecoute.db)."
RULES_HELP = "rules.yaml to use (default: $ECOUTE_RULES, else ./rules.yaml)."


def open_rules(path: str | None):
    try:
        return load_rules(path)
    except RulesError as exc:
        raise click.ClickException(f"invalid rules:\n{exc}\nHint: `ecoute rules check {exc.path}` lists every problem.")


def load_models(rules) -> None:
    """Load the configured models now, so that a misconfigured one stops the command before any work."""
    # imported here, as every command implementation is: `ecoute --help` must not wait for torch
    from pipeline.models.heads import HeadsMismatch
    from pipeline.stages import load_models as load
    from pipeline.models.task_models import TaskModelError

    try:
        load(rules)
    except (TaskModelError, HeadsMismatch) as exc:
        raise click.ClickException(str(exc))


def open_store(db: str | None):
    from pipeline.store import Store

    try:
        return Store(db)
    except Exception as exc:  # a bad URL or an unreachable server: say which store
        raise click.ClickException(f"cannot open store {db or os.environ.get('ECOUTE_DB') or 'ecoute.db'}: {exc}")


def read_all(path: str, nothing: str) -> list:
    """Every mention of a JSONL or CSV file, or each bad line on stderr and a ClickException ("… nothing `nothing`")."""
    from listeners.files import RowError, read_mentions

    errors: list[RowError] = []
    mentions = list(read_mentions(path, errors))
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        raise click.ClickException(f"{len(errors)} bad input lines; nothing {nothing}")
    return mentions

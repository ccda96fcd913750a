"""`ecoute`: the command line. Each command parses its options, calls one job, prints the outcome.

The commands live by family: mentions (ingest, classify, listen, sources, delete), rules (check, test),
serve (demo, dashboard), desk (escalate, users, erase, prune), reports (alerts, report, digest),
models (train, train-intents, bench) and db (upgrade, current); common.py holds what they share.
"""
from __future__ import annotations

import logging

import click

from pipeline.cli import db, desk, mentions, models, reports, rules, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress.")
def main(verbose: bool) -> None:
    """Écoute: listen for brands, find what needs a human, put it in front of the right person.

    \b
    Example:
      ecoute demo
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for family in (mentions, rules, serve, desk, reports, models, db):
    for command in family.COMMANDS:
        main.add_command(command)

"""`ecoute rules check` and `ecoute rules test`: rules.yaml validated, its automations tried on a file.
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import json
import sys

import click

from pipeline.cli.common import RULES_HELP, load_models, open_rules, read_all
from pipeline.rules import RulesError, load_rules, rules_path


@click.group()
def rules():
    """Check rules.yaml, and try its automations on a file of mentions."""


@rules.command("check")
@click.argument("path", required=False)
def rules_check(path):
    """Validate PATH (default: $ECOUTE_RULES, else ./rules.yaml); exit 1 on any mistake. Examples that
    look alike across two complaint categories are warnings (exit 0): a complaint like them may get either.

    \b
    Example:
      ecoute rules check rules.yaml
    """
    from pipeline.models.categories import lookalike_warnings

    try:
        loaded = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    click.echo(f"{rules_path(path)}: ok ({len(loaded.brands)} brands, {len(loaded.sources)} sources, "
               f"{len(loaded.goals)} goals)")
    for warning in lookalike_warnings(loaded, rules_path(path)):
        click.echo(warning, err=True)


@rules.command("test")
@click.argument("input_file", metavar="FILE.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mention, then one with the summary.")
def rules_test(input_file, rules_file, as_json):
    """Dry run: classify FILE's mentions and show which automations would fire and what they would do.

    Nothing is stored or sent. Mentions of one author in one thread share a case, as in the store,
    so an automation fires once on them. Ends with how many cases each automation would fire on.

    \b
    Example:
      ecoute rules test mentions.jsonl --rules rules.yaml
    """
    from pipeline.desk.automations import dry_run, summary
    from pipeline.jobs import classify_mentions

    loaded = open_rules(rules_file)
    load_models(loaded)
    mentions = read_all(input_file, "tested")
    trials = dry_run(zip(mentions, classify_mentions(mentions, loaded)), loaded)
    for trial in trials:
        click.echo(json.dumps(_trial_record(trial), ensure_ascii=False) if as_json else _trial_line(trial))
    counts = summary(trials, loaded)
    if as_json:
        click.echo(json.dumps({"summary": counts}, ensure_ascii=False))
        return
    click.echo(f"{len(trials)} mentions, {sum(t.queued for t in trials)} would be cases; automations fired:")
    for name, count in counts.items():
        click.echo(f"  {name}: {count}")
    if not counts:
        click.echo("  (no enabled automations in the rules)")


def _trial_record(trial) -> dict:
    from pipeline.desk.automations import describe

    return {"id": trial.mention.source_id, "queued": trial.queued, "priority_before": trial.priority_before,
            "priority_after": trial.priority_after, "fired_on_case_already": list(trial.earlier),
            "automations": [{"name": f.automation, "actions": f.actions, "does": describe(f.actions),
                             "priority_before": f.before.priority, "priority_after": f.after.priority}
                            for f in trial.fired]}


def _trial_line(trial) -> str:
    from pipeline.desk.automations import describe

    lab = trial.labels
    kind = "/".join(v for v in (lab.intent, lab.category) if v)
    about = ", ".join(lab.brands) or "no brand"
    head = f"{trial.mention.source_id} ({lab.lang}, {about}, {kind}, priority {lab.priority})"
    if not trial.queued:
        return f"{head}: no case (" + ("needs no response)" if not lab.needs_response else
                                      "priority below queue.min_priority)")
    if not trial.fired:
        return f"{head}: no automation fires" + (
            f" (fired on this case already: {', '.join(trial.earlier)})" if trial.earlier else "")
    fired = "; ".join(f"{f.automation} → {describe(f.actions)}" for f in trial.fired)
    return f"{head}: {fired}; priority {trial.priority_before} → {trial.priority_after}"


COMMANDS = (rules,)

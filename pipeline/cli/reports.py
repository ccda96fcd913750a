"""What marketing reads: `ecoute alerts`, `ecoute report`, `ecoute digest`.
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import click

from pipeline.cli.common import DB_HELP, RULES_HELP, open_rules, open_store


@click.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--since", default="7d", show_default=True, help="How far back to look: 6h, 7d, 4w…")
@click.option("--no-send", is_flag=True, help="Detect and store alerts, post nothing to the webhooks.")
def alerts(db, rules_file, since, no_send):
    """Detect crisis and spike alerts in the store, print them, post new ones to the webhooks.

    Volume spikes and negative-share rises per brand against a seasonal baseline, and fast-growing
    posts (docs/alerts.md). Rerunning updates the same alerts; a webhook that failed is retried.

    \b
    Example:
      ecoute alerts --db team.db --since 2d
    """
    from pipeline.alerts.detection import run
    from pipeline.rules import parse_duration
    from pipeline.store import utcnow

    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since")
    rules = open_rules(rules_file)
    store = open_store(db)
    result = run(store, rules, since=window, deliver=not no_send)
    for row in store.alerts(since=utcnow() - window).itertuples():
        new = " (new)" if row.id in result.new_ids else ""
        click.echo(f"#{row.id} {row.kind} {row.brand} {row.window_start:%Y-%m-%d %H:%M} to "
                   f"{row.window_end:%Y-%m-%d %H:%M} UTC{new}: {row.reason}")
    for delivery in result.deliveries:
        click.echo(f"webhook {delivery.webhook}: alert #{delivery.alert_id} "
                   + ("sent" if delivery.error is None else f"failed after {delivery.attempts} attempts: {delivery.error}"))
    click.echo(f"{len(result.new_ids)} new alerts, {len(result.updated_ids)} updated")


@click.command()
@click.option("--since", default="7d", show_default=True,
              help="Period covered: 7d, 24h, 4w or an ISO date (compared with the period before).")
@click.option("--until", help="End of the period (ISO date or time, UTC; default: now), e.g. for an older store.")
@click.option("--brand", help="One brand only (default: every brand in rules.yaml).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="File to write: .html (self-contained) or .md (Markdown).")
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
def report(since, until, brand, output, db, rules_file):
    """Write a one-minute summary: per-brand figures and charts, goals, top complaints, risks, alerts.

    \b
    Example:
      ecoute report --since 7d -o report.html
    """
    from pipeline.analytics.report import write

    rules = open_rules(rules_file)
    if brand and brand not in {b.name for b in rules.brands}:
        raise click.BadParameter(f"unknown brand {brand!r}; rules.yaml has {', '.join(b.name for b in rules.brands)}",
                                 param_hint="--brand")
    try:
        result = write(output, rules, since=since, until=until, db=open_store(db), brand=brand)
    except ValueError as exc:
        raise click.ClickException(f"{exc}\nHint: --since 7d, --until 2026-11-10")
    click.echo(f"wrote {output}: {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d %H:%M} UTC, "
               f"{int(result.totals['volume'].sum()) if len(result.totals) else 0} brand mentions, "
               f"{len(result.alerts)} alerts")


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit (for cron).")
@click.option("--name", "names", multiple=True, help="Only this digest (repeatable).")
@click.option("--force", is_flag=True, help="Send even when not due (with --name: a test sending).")
@click.option("--every", default="1m", show_default=True, help="Without --once: how often to check what is due.")
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
def digest(once, names, force, every, db, rules_file):
    """Send the `digests:` of rules.yaml when due: the report by e-mail, a summary to webhooks.

    \b
    Example:
      SMTP_USERNAME=bot SMTP_PASSWORD=… ecoute digest --once
    """
    from pipeline.jobs import digests_due

    rules = open_rules(rules_file)
    unknown = set(names) - {d.name for d in rules.digests}
    if unknown:
        raise click.BadParameter(f"no digest named {', '.join(sorted(unknown))} in rules.yaml", param_hint="--name")
    failed = False
    for outcome in digests_due(open_store(db), rules, tuple(names), force, once, every):
        for target in outcome.sent_to:
            click.echo(f"digest {outcome.digest}: sent to {target}")
        for error in outcome.errors:
            click.echo(f"digest {outcome.digest}: {error}", err=True)
        failed = failed or bool(outcome.errors)
    if failed:
        raise SystemExit(1)

COMMANDS = (alerts, report, digest)

"""Mentions in and out: `ecoute ingest`, `classify`, `listen`, `sources`, `delete`.
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import codecs
import sys

import click

from pipeline.cli.common import DB_HELP, RULES_HELP, load_models, open_rules, open_store, read_all


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--skip-invalid", is_flag=True, help="Store the valid rows of a file that has bad ones.")
@click.option("--no-classify", is_flag=True, help="Only store; classify later.")
@click.option("--encoding", help="The files' text encoding (latin-1, cp1252…); default UTF-8, or what a byte-order mark says.")
def ingest(files, db, rules_file, skip_invalid, no_classify, encoding):
    """Store mentions from JSONL or CSV FILES (each row needs id and text), then classify them.

    The same mention ingested twice is stored once; a deleted one is not stored again. A bad row is
    reported with its line number; without --skip-invalid, a file with bad rows stores nothing
    (each file is one transaction).

    \b
    Example:
      ecoute ingest mentions.jsonl more.csv --db team.db
      ecoute ingest export.csv --encoding cp1252 --skip-invalid
    """
    from pipeline.jobs import ingest_checked, process_store

    _check_encoding(encoding)
    rules = None if no_classify else open_rules(rules_file)
    if rules is not None:
        load_models(rules)
    store = open_store(db)
    failed = False
    for path in files:
        done = ingest_checked(store, path, skip_invalid, encoding)
        for line in [*(f"error: {p}" for p in done.problems), *(f"skipped: {s}" for s in done.skipped)]:
            click.echo(line, err=True)
        click.echo(done.line(), err=bool(done.problems))
        failed = failed or bool(done.problems)
    if rules is not None:
        classified, queued = process_store(store, rules)
        click.echo(f"classified {classified} mentions, {queued} added to the queue")
    if failed:
        sys.exit(1)


def _check_encoding(encoding: str | None) -> None:
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise click.BadParameter(f"unknown encoding {encoding!r} (try utf-8, latin-1, cp1252, utf-16)",
                                     param_hint="--encoding") from None


@click.command()
@click.argument("input_file", metavar="IN.jsonl", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write one JSON line per input line ('-' for stdout).")
@click.option("--rules", "rules_file", help=RULES_HELP)
def classify(input_file, output, rules_file):
    """Score mentions without a store: one output line per input line, in order.

    Input lines need id and text. Output fields: id, lang, sentiment, sentiment_score,
    complaint, complaint_score, intent, category, severity (complaints only), needs_response,
    relevant, brands, competitors, transparency, priority, reasons, model, error, emotion,
    emotion_score, irony_score (reasons says "ironic 0.93" where irony changed the labels).

    \b
    Example:
      ecoute classify mentions.jsonl -o scored.jsonl
    """
    from pipeline.jobs import classify_mentions, output_record, write_jsonl

    rules = open_rules(rules_file)
    load_models(rules)
    mentions = read_all(input_file, "written")
    records = (output_record(m.source_id, lab) for m, lab in zip(mentions, classify_mentions(mentions, rules)))
    with click.open_file(output, "w", encoding="utf-8") as handle:
        count = write_jsonl(records, handle)
    if output != "-":
        click.echo(f"{count} mentions classified into {output}")


@click.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--once", is_flag=True, help="Run every source one cycle, then exit.")
@click.option("--source", "names", multiple=True, help="Only this source (repeatable).")
@click.option("--no-classify", is_flag=True, help="Store mentions without classifying them.")
def listen(db, rules_file, once, names, no_classify):
    """Fetch new mentions from the sources in rules.yaml, on their intervals, until stopped.

    Each page of mentions is stored with its cursor in one transaction, so a restart resumes
    where it stopped and nothing is stored twice. A failing source backs off alone.

    \b
    Example:
      ecoute listen --once --source news
    """
    from listeners.base import ListenerError

    from pipeline.listen import listen as listen_forever, listen_once, sources_to_listen

    rules = open_rules(rules_file)
    if not no_classify:
        load_models(rules)
    store = open_store(db)
    try:
        sources = sources_to_listen(rules, names)
    except ListenerError as exc:
        raise click.ClickException(str(exc))
    if not once:
        listen_forever(store, rules, sources, not no_classify, click.echo)
    elif listen_once(store, rules, sources, not no_classify, click.echo):
        sys.exit(1)


@click.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
def sources(db, rules_file):
    """Health of each source: last success, last error, items fetched, current backoff.

    \b
    Example:
      ecoute sources --db team.db
    """
    rules = open_rules(rules_file)
    health = open_store(db).health().set_index("source_name")
    for source in rules.sources:
        row = health.loc[source.name] if source.name in health.index else None
        click.echo(f"{source.name} ({source.type}, every {source.interval}"
                   + ("" if source.enabled else ", disabled") + f"): {_state(row)}")


def _state(row) -> str:
    """A source's health row (None: never run) as the rest of its line."""
    from pipeline.desk.redaction import redact

    if row is None:
        return "never run"
    return (f"last success {_when(row['last_success_at'])}, {int(row['items_fetched'])} items fetched"
            + (f", last error {_when(row['last_error_at'])}: {redact(row['last_error'])}" if row["last_error"] else "")
            + (f", backing off until {row['backoff_until']:%H:%M:%S} UTC" if _pending(row["backoff_until"]) else ""))


def _when(value) -> str:
    import pandas as pd

    return "never" if value is None or pd.isna(value) else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _pending(value) -> bool:
    import pandas as pd

    from pipeline.store import utcnow

    return value is not None and not pd.isna(value) and value > utcnow()


@click.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("--db", help=DB_HELP)
@click.option("--purge", is_flag=True, help="Remove the mention and its labels instead of marking it deleted.")
@click.option("--reason", default="deleted upstream", show_default=True, help="Kept in the audit log.")
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def delete(keys, db, purge, reason, actor):
    """Honour upstream deletions: mark (or --purge) mentions by key SOURCE:ID.

    A marked mention keeps its identity but loses its text and leaves the queue; the audit log
    records who, when and why.

    \b
    Example:
      ecoute delete twitter:1460323737035677698 --purge
    """
    store = open_store(db)
    missing = [key for key in keys if not store.mark_deleted(key, actor, purge, reason)]
    click.echo(f"{len(keys) - len(missing)} {'purged' if purge else 'marked deleted'}")
    if missing:
        raise click.ClickException(f"not stored: {', '.join(missing)} (keys look like twitter:123)")


COMMANDS = (ingest, classify, listen, sources, delete)

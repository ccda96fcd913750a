"""`ecoute`: the command line. Each command is a thin caller of pipeline functions."""
from __future__ import annotations

import codecs
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import click

from pipeline.rules import RulesError, load_rules, rules_path

DB_HELP = "Store: a SQLite file path or a SQLAlchemy URL (default: $ECOUTE_DB, else ./ecoute.db)."
RULES_HELP = "rules.yaml to use (default: $ECOUTE_RULES, else ./rules.yaml)."


def _rules(path: str | None):
    try:
        return load_rules(path)
    except RulesError as exc:
        raise click.ClickException(f"invalid rules:\n{exc}\nHint: `ecoute rules check {exc.path}` lists every problem.")


def _models(rules) -> None:
    """Load the configured models now, so that a misconfigured one stops the command before any work."""
    from pipeline.models.heads import HeadsMismatch
    from pipeline.stages import load_models
    from pipeline.models.task_models import TaskModelError

    try:
        load_models(rules)
    except (TaskModelError, HeadsMismatch) as exc:
        raise click.ClickException(str(exc))


def _store(db: str | None):
    from pipeline.store import Store

    try:
        return Store(db)
    except Exception as exc:  # a bad URL or an unreachable server: say which store
        raise click.ClickException(f"cannot open store {db or os.environ.get('ECOUTE_DB') or 'ecoute.db'}: {exc}")


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


@main.command()
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
    from listeners.files import RowError, read_mentions

    from pipeline.jobs import ingest_file, process_store
    from pipeline.store import Refused

    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise click.BadParameter(f"unknown encoding {encoding!r} (try utf-8, latin-1, cp1252, utf-16)",
                                     param_hint="--encoding") from None
    rules = None if no_classify else _rules(rules_file)
    if rules is not None:
        _models(rules)
    store = _store(db)
    failed = False
    for path in files:
        errors: list[RowError] = []
        try:
            if not skip_invalid:
                for _ in read_mentions(path, errors, encoding):
                    pass
                if errors:
                    raise errors[0]
            read, saved = ingest_file(store, path, errors if skip_invalid else None, encoding)
        except (RowError, Refused) as exc:
            failed = True
            problems = errors or [exc if isinstance(exc, RowError) else f"{path}: {exc}"]
            for error in problems:
                click.echo(f"error: {error}", err=True)
            click.echo(f"{path}: nothing stored ({len(problems)} bad rows; fix them or use --skip-invalid)",
                       err=True)
            continue
        for error in [*errors, *(f"{path}: {refused}" for refused in saved.refused)]:
            click.echo(f"skipped: {error}", err=True)
        stored = read - saved.deleted - len(saved.refused)
        click.echo(f"{path}: {read} rows, {saved.new} new mentions, {stored - saved.new} already stored"
                   + (f", {saved.deleted} deleted before (not stored again)" if saved.deleted else "")
                   + (f", {len(errors) + len(saved.refused)} bad rows skipped" if errors or saved.refused else ""))
    if rules is not None:
        classified, queued = process_store(store, rules)
        click.echo(f"classified {classified} mentions, {queued} added to the queue")
    if failed:
        sys.exit(1)


@main.command()
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
    from listeners.files import RowError, read_mentions

    from pipeline.jobs import classify_mentions, output_record, write_jsonl

    rules = _rules(rules_file)
    _models(rules)
    errors: list[RowError] = []
    mentions = list(read_mentions(input_file, errors))
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        raise click.ClickException(f"{len(errors)} bad input lines; nothing written")
    records = (output_record(m.source_id, lab) for m, lab in zip(mentions, classify_mentions(mentions, rules)))
    with click.open_file(output, "w", encoding="utf-8") as handle:
        count = write_jsonl(records, handle)
    if output != "-":
        click.echo(f"{count} mentions classified into {output}")


@main.group()
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
    import json

    from listeners.files import RowError, read_mentions

    from pipeline.desk.automations import dry_run, summary
    from pipeline.jobs import classify_mentions

    rules = _rules(rules_file)
    _models(rules)
    errors: list[RowError] = []
    mentions = list(read_mentions(input_file, errors))
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        raise click.ClickException(f"{len(errors)} bad input lines; nothing tested")
    trials = dry_run(zip(mentions, classify_mentions(mentions, rules)), rules)
    for trial in trials:
        click.echo(json.dumps(_trial_record(trial), ensure_ascii=False) if as_json else _trial_line(trial))
    counts = summary(trials, rules)
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


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
def escalate(db, rules_file):
    """Notify the escalation targets of cases due soon or breached (once per case and stage), and retry
    case notifications that failed. Meant for cron; `ecoute listen` does it each cycle.

    \b
    Example:
      ecoute escalate --db team.db
    """
    from pipeline.desk.escalation import escalate as run_escalation

    rules = _rules(rules_file)
    store = _store(db)
    result = run_escalation(store, rules)
    for case_id, stage in result.stages:
        click.echo(f"case #{case_id}: {stage.replace('_', ' ')}")
    for sent in result.sent:
        click.echo(f"{sent.target}: case #{sent.case_id} "
                   + ("sent" if sent.error is None else f"failed after {sent.attempts} attempts: {sent.error}"))
    click.echo(f"{len(result.stages)} case stage(s) escalated, {sum(s.error is None for s in result.sent)} "
               f"notification(s) sent")


@main.command()
@click.option("--db", default="ecoute-demo.db", show_default=True, help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--port", default=8501, show_default=True, help="Dashboard port.")
@click.option("--no-dashboard", is_flag=True, help="Load and classify the demo, then exit.")
def demo(db, rules_file, port, no_dashboard):
    """Load the bundled demo mentions (two fictional brands, EN and FR), classify them, open the dashboard.

    \b
    Example:
      ecoute demo --port 8502
    """
    from pipeline.jobs import load_demo

    rules = _rules(rules_file)
    _models(rules)
    store = _store(db)
    count, classified, queued = load_demo(store, rules)
    click.echo(f"demo: {count} mentions in {store.url}, {classified} newly classified, {queued} added to the queue")
    from pipeline.alerts.detection import after_classification

    after_classification(store, rules, click.echo)
    if not no_dashboard:
        _run_dashboard(store.url, str(rules_path(rules_file)), port, "127.0.0.1")


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--port", default=8501, show_default=True, help="Port to serve on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to bind. Only a loopback address while the store has no users (no sign-in).")
def dashboard(db, rules_file, port, address):
    """Serve the dashboard (queue and trends) on the configured store.

    \b
    Example:
      ecoute dashboard --db team.db --port 8080
    """
    from pipeline.store import database_url
    from pipeline.desk.users import has_users, is_loopback

    _rules(rules_file)
    if not is_loopback(address) and not has_users(_store(db)):   # no sign-in: everyone reached would be admin
        raise click.ClickException(
            f"the store has no users, so the dashboard has no sign-in and may only listen on 127.0.0.1, not "
            f"{address or 'every interface'}; run `ecoute users add NAME --role admin` first, then everyone signs in")
    _run_dashboard(database_url(db), str(rules_path(rules_file)), port, address)


def _run_dashboard(db_url: str, rules_file: str, port: int, address: str) -> None:
    spec = importlib.util.find_spec("dashboard")
    if spec is None or spec.origin is None:
        raise click.ClickException("dashboard.py not found; install Écoute with `pip install -e .`")
    env = {**os.environ, "ECOUTE_DB": db_url, "ECOUTE_RULES": str(Path(rules_file).resolve())}
    command = [sys.executable, "-m", "streamlit", "run", spec.origin, "--server.headless", "true",
               "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false"]
    click.echo(f"dashboard on http://{address}:{port} (Ctrl+C to stop)")
    try:
        sys.exit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        pass


@main.command()
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
    from listeners.runner import Backoff, listen_forever, run_source, selected_sources

    from pipeline.jobs import process_store

    rules = _rules(rules_file)
    if not no_classify:
        _models(rules)
    store = _store(db)
    try:
        sources = selected_sources(rules, names)
    except ListenerError as exc:
        raise click.ClickException(str(exc))
    if not sources:
        raise click.ClickException("no enabled sources in rules.yaml (see docs/sources.md)")

    def classify_new():
        from pipeline.desk.escalation import after_cycle

        if not no_classify:
            classified, queued = process_store(store, rules, deliver=False)   # delivered once, below
            click.echo(f"classified {classified} mentions, {queued} added to the queue")
            from pipeline.alerts.detection import after_classification

            after_classification(store, rules, click.echo)
        after_cycle(store, rules, click.echo)   # escalation, then every pending case notification

    if not once:
        listen_forever(store, rules, sources, classify_new, click.echo)
        return
    failed = False
    for source in sources:
        outcome = run_source(store, rules, source, Backoff())
        click.echo(outcome.line())
        failed = failed or outcome.error is not None
    classify_new()
    if failed:
        sys.exit(1)


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
def sources(db, rules_file):
    """Health of each source: last success, last error, items fetched, current backoff.

    \b
    Example:
      ecoute sources --db team.db
    """
    from pipeline.desk.redaction import redact

    rules = _rules(rules_file)
    health = _store(db).health().set_index("source_name")
    for source in rules.sources:
        row = health.loc[source.name] if source.name in health.index else None
        state = "never run" if row is None else (
            f"last success {_when(row['last_success_at'])}, {int(row['items_fetched'])} items fetched"
            + (f", last error {_when(row['last_error_at'])}: {redact(row['last_error'])}" if row["last_error"] else "")
            + (f", backing off until {row['backoff_until']:%H:%M:%S} UTC" if _pending(row["backoff_until"]) else ""))
        click.echo(f"{source.name} ({source.type}, every {source.interval}"
                   + ("" if source.enabled else ", disabled") + f"): {state}")


@main.command()
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
    rules = _rules(rules_file)
    store = _store(db)
    result = run(store, rules, since=window, deliver=not no_send)
    for row in store.alerts(since=utcnow() - window).itertuples():
        new = " (new)" if row.id in result.new_ids else ""
        click.echo(f"#{row.id} {row.kind} {row.brand} {row.window_start:%Y-%m-%d %H:%M} to "
                   f"{row.window_end:%Y-%m-%d %H:%M} UTC{new}: {row.reason}")
    for delivery in result.deliveries:
        click.echo(f"webhook {delivery.webhook}: alert #{delivery.alert_id} "
                   + ("sent" if delivery.error is None else f"failed after {delivery.attempts} attempts: {delivery.error}"))
    click.echo(f"{len(result.new_ids)} new alerts, {len(result.updated_ids)} updated")


def _when(value) -> str:
    import pandas as pd

    return "never" if value is None or pd.isna(value) else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _pending(value) -> bool:
    import pandas as pd

    from pipeline.store import utcnow

    return value is not None and not pd.isna(value) and value > utcnow()


@main.command()
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
    store = _store(db)
    missing = [key for key in keys if not store.mark_deleted(key, actor, purge, reason)]
    click.echo(f"{len(keys) - len(missing)} {'purged' if purge else 'marked deleted'}")
    if missing:
        raise click.ClickException(f"not stored: {', '.join(missing)} (keys look like twitter:123)")


@main.group()
def users():
    """Desk users and their roles: agent (works the desk), marketing (views only), admin (everything)."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["agent", "marketing", "admin"]), help="What the user may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (else it is asked for).")
@click.option("--no-password", is_flag=True, help="A user who signs in through OIDC only.")
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def users_add(name, role, password_stdin, no_password, db, actor):
    """Add a user; the password is stored as an Argon2 hash, never echoed or logged.

    A password needs at least 12 characters (a few words make a good one); a name at most 120.

    \b
    Example:
      printf '%s' "$PASSWORD" | ecoute users add ana --role agent --password-stdin
    """
    from pipeline.desk.users import UserError, add_user

    if no_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password.strip():
            raise click.ClickException("the password read from stdin is empty; pipe it in, e.g. "
                                       "printf '%s' \"$PASSWORD\" | ecoute users add NAME --role agent --password-stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = add_user(_store(db), name, role, password, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"added {user.name} ({user.role})" + (", OIDC sign-in only" if password is None else ""))


@users.command("list")
@click.option("--db", help=DB_HELP)
def users_list(db):
    """Every user with role, creation date, availability (available, away, signed_out) and whether disabled.

    \b
    Example:
      ecoute users list --db team.db
    """
    from pipeline.desk.users import list_users

    found = list_users(_store(db))
    for user in found:
        click.echo(f"{user.name}\t{user.role}\tcreated {user.created_at:%Y-%m-%d}\t{user.availability}"
                   + ("\tdisabled" if user.disabled else ""))
    if not found:
        click.echo("no users: the dashboard runs without sign-in (add one with `ecoute users add`)")


@users.command("disable")
@click.argument("name")
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def users_disable(name, db, actor):
    """Stop a user from signing in (their past actions stay in the audit log).

    \b
    Example:
      ecoute users disable bo
    """
    from pipeline.desk.users import UserError, disable_user

    try:
        disable_user(_store(db), name, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"disabled {name}")


@users.command("enable")
@click.argument("name")
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def users_enable(name, db, actor):
    """Let a disabled user sign in again.

    \b
    Example:
      ecoute users enable bo
    """
    from pipeline.desk.users import UserError, enable_user

    try:
        enable_user(_store(db), name, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"enabled {name}")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["agent", "marketing", "admin"]))
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def users_role(name, role, db, actor):
    """Change what a user may do.

    \b
    Example:
      ecoute users role bo admin
    """
    from pipeline.desk.users import UserError, set_role

    try:
        set_role(_store(db), name, role, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{name} is now {role}")


@users.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin (else it is asked for).")
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
def users_password(name, password_stdin, db, actor):
    """Set a user's password (an OIDC-only user gains password sign-in); it needs at least 12 characters.
    The user's dashboard sessions signed in with the old password are signed out.

    \b
    Example:
      printf '%s' "$PASSWORD" | ecoute users password ana --password-stdin
    """
    from pipeline.desk.users import UserError, set_password

    password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                else click.prompt("New password", hide_input=True, confirmation_prompt=True))
    try:
        set_password(_store(db), name, password, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"password of {name} changed")


@users.command("availability")
@click.argument("name")
@click.argument("availability", type=click.Choice(["available", "away", "signed_out"]))
@click.option("--db", help=DB_HELP)
@click.option("--actor", help="Who asked, for the audit log (default: the user herself).")
def users_availability(name, availability, db, actor):
    """Say whether a user is at the desk: automatic assignment (queue.assignment or a team's
    round_robin / least_open) gives new cases to 'available' agents only, never to 'away' or
    'signed_out' ones. The dashboard sets it at sign-in and sign-out and from its sidebar toggle.

    \b
    Example:
      ecoute users availability ana away
    """
    from pipeline.desk.users import UserError, set_availability

    try:
        set_availability(_store(db), name, availability, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{name} is now {availability}")


@main.group("db")
def db_group():
    """The store's schema: Alembic migrations (pipeline/store/migrations), for SQLite and PostgreSQL."""


@db_group.command("upgrade")
@click.option("--db", help=DB_HELP)
def db_upgrade(db):
    """Migrate the store to the newest revision (every command does this on opening a store).

    A store created before Alembic is stamped at the revision its schema_migrations table shows.

    \b
    Example:
      ecoute db upgrade --db postgresql+psycopg://ecoute@db.internal/ecoute
    """
    from pipeline.store.migrations import current

    store = _store(db)
    click.echo(f"{store.url.split('@')[-1]}: at revision {current(store.engine)} (head)")


@db_group.command("current")
@click.option("--db", help=DB_HELP)
def db_current(db):
    """Show the store's revision without migrating it.

    \b
    Example:
      ecoute db current --db team.db
    """
    import sqlalchemy as sa

    from pipeline.store.migrations import HEAD, current
    from pipeline.store import database_url

    url = database_url(db)
    try:
        revision = current(sa.create_engine(url))
    except sa.exc.SQLAlchemyError as exc:
        raise click.ClickException(f"cannot read store {url.split('@')[-1]}: {exc}")
    if revision == HEAD:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision or 'none'} (head is {HEAD}; run `ecoute db upgrade`)")


@main.command()
@click.option("--author", required=True, help="The person's handle: @dan, u/dan, dan@mastodon.social…")
@click.option("--source", help="Only on this platform: twitter, reddit, mastodon, bluesky, rss, file.")
@click.option("--db", help=DB_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who asked, for the audit log.")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
def erase(author, source, db, actor, dry_run):
    """Erase a person on request: their mentions, labels, cases, replies and notes naming them, alert links.

    One transaction. Open cases go too. Erasure follows the link: handles an agent linked to this one as
    the same person (the case page's Customer section) are erased with it, and the links go; the output
    names them. The audit log records who asked, when and how many rows, never the handle.

    \b
    Example:
      ecoute erase --author @dan --source twitter --actor dpo@example.com
    """
    from pipeline.desk.privacy import erase as erase_author

    try:
        removal = erase_author(_store(db), author, source, actor=actor, dry_run=dry_run)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--author")
    click.echo(removal.line())


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--actor", default="cli", show_default=True, help="Who ran it, for the audit log.")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
def prune(db, rules_file, actor, dry_run):
    """Remove mentions older than privacy.retention_days, with their labels and closed cases.

    Open cases are never pruned; a closed case goes once all its mentions are old. Run it daily (cron).

    \b
    Example:
      ecoute prune --dry-run
    """
    from pipeline.desk.privacy import prune as prune_store

    days = _rules(rules_file).privacy.retention_days
    if days is None:
        raise click.ClickException("privacy.retention_days is not set in rules.yaml, so everything is kept; "
                                   "add e.g. `privacy: {retention_days: 365}`")
    removal = prune_store(_store(db), days, actor=actor, dry_run=dry_run)
    click.echo(f"older than {days} days: {removal.line()}")


@main.group(invoke_without_command=True)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Data folder (default: ../shared/data).")
@click.option("--no-speed", is_flag=True, help="Skip the throughput measurements.")
@click.pass_context
def bench(ctx, rules_file, data, no_speed):
    """Quality on the public test splits next to published anchors, peers, throughput, memory.

    With a subcommand, another benchmark (`ecoute bench queue`).

    \b
    Example:
      ecoute bench > bench.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.bench import run
    from pipeline.models.train import DEFAULT_DATA

    source = Path(data) if data else DEFAULT_DATA
    if not (source / "umsab").is_dir():
        raise click.ClickException(f"{source}: expected umsab/ and complaints/ folders (see ../shared/data/README.md)")
    run(_rules(rules_file), source, click.echo, speed=not no_speed, rules_file=rules_file)


@bench.command("queue")
@click.option("--db", help="Store to fill and use (default: a temporary SQLite file).")
@click.option("--open-items", default=100_000, show_default=True, help="Open cases in the store.")
@click.option("--agents", default=20, show_default=True, help="Concurrent agents.")
@click.option("--seconds", default=30.0, show_default=True, help="How long the agents work.")
def bench_queue(db, open_items, agents, seconds):
    """The desk under load: first queue page time, then agents claiming, replying, resolving at once.

    \b
    Example:
      ecoute bench queue --open-items 100000 --agents 20 --seconds 30 --db postgresql+psycopg://127.0.0.1/ecoute
    """
    from pipeline.bench.bench_queue import run

    run(db, open_items, agents, seconds, click.echo)


@bench.command("trends")
@click.option("--mentions", "total", default=1_000_000, show_default=True,
              help="Synthetic classified mentions in the store (over the last year; reused when there).")
@click.option("--db", help="Store to fill and use (default: a temporary SQLite file).")
def bench_trends(total, db):
    """Time the Trends page's queries and mentions(since="30d") on a big store; last line is JSON.

    \b
    Example:
      ecoute bench trends --mentions 1000000 --db bench-trends.db
    """
    from pipeline.bench.bench_trends import run

    run(db, total, click.echo)


@main.command()
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

    rules = _rules(rules_file)
    if brand and brand not in {b.name for b in rules.brands}:
        raise click.BadParameter(f"unknown brand {brand!r}; rules.yaml has {', '.join(b.name for b in rules.brands)}",
                                 param_hint="--brand")
    try:
        result = write(output, rules, since=since, until=until, db=_store(db), brand=brand)
    except ValueError as exc:
        raise click.ClickException(f"{exc}\nHint: --since 7d, --until 2026-11-10")
    click.echo(f"wrote {output}: {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d %H:%M} UTC, "
               f"{int(result.totals['volume'].sum()) if len(result.totals) else 0} brand mentions, "
               f"{len(result.alerts)} alerts")


@main.command()
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
    import time

    from pipeline.alerts.digests import run_due
    from pipeline.rules import parse_duration

    rules = _rules(rules_file)
    unknown = set(names) - {d.name for d in rules.digests}
    if unknown:
        raise click.BadParameter(f"no digest named {', '.join(sorted(unknown))} in rules.yaml", param_hint="--name")
    store = _store(db)
    failed = False
    while True:
        for outcome in run_due(rules, store, names=tuple(names), force=force):
            for target in outcome.sent_to:
                click.echo(f"digest {outcome.digest}: sent to {target}")
            for error in outcome.errors:
                click.echo(f"digest {outcome.digest}: {error}", err=True)
            failed = failed or bool(outcome.errors)
        if once or force:
            break
        time.sleep(parse_duration(every).total_seconds())
    if failed:
        raise SystemExit(1)


@main.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Data folder (default: ../shared/data).")
@click.option("--encoder", default="embedded", show_default=True, help="'embedded', a Hugging Face id or a path.")
@click.option("--heads", "heads_dir", type=click.Path(file_okay=False), help="Where to write the heads "
              "(default: pipeline/models/heads, the shipped ones).")
@click.option("--max-length", default=128, show_default=True)
@click.option("--epochs", default=3, show_default=True,
              help="Epochs of LoRA fine-tuning of the encoder before the heads (0: keep the encoder frozen).")
@click.option("--top-layers", default=6, show_default=True,
              help="How many of the encoder's top layers get the adapter (0: all of them); the layers below are "
                   "computed once per text, so fewer is faster.")
@click.option("--adapter", "adapter_from", type=click.Path(exists=True, file_okay=False),
              help="Train the heads on this already trained adapter (copied; no fine-tuning), "
                   "e.g. pipeline/models/heads/adapter.")
@click.option("--backend", type=click.Choice(["onnx-int8", "onnx", "torch"]), default="onnx-int8", show_default=True,
              help="The encoder backend whose embeddings the heads learn; written in the card, and the one the "
                   "pipeline runs with these heads unless rules.yaml sets models.backend.")
def train(data, encoder, heads_dir, max_length, epochs, top_layers, adapter_from, backend):
    """Retrain the sentiment, complaint, irony and emotion heads from the train/val splits; writes a model card.

    \b
    Example:
      ecoute train --encoder intfloat/multilingual-e5-small --heads my-heads
      ecoute train --adapter pipeline/models/heads/adapter --heads my-heads   # heads only, on the shipped adapter
    """
    from pipeline.models import heads as H
    from pipeline.models.train import DEFAULT_DATA, train as run_training

    logging.getLogger().setLevel(logging.INFO)
    source = Path(data) if data else DEFAULT_DATA
    if not (source / "umsab").is_dir() or not (source / "complaints").is_dir():
        raise click.ClickException(f"{source}: expected umsab/ and complaints/ folders (see ../shared/data/README.md)")
    card = run_training(source, encoder, Path(heads_dir) if heads_dir else H.HEADS_DIR, max_length,
                        finetune_epochs=epochs, adapter_from=Path(adapter_from) if adapter_from else None,
                        top_layers=top_layers or None, backend=backend)
    for task, scores in card["metrics"].items():
        click.echo(f"{task}: " + ", ".join(f"{k} {v}" for k, v in scores.items()))


@main.command("train-intents")
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False),
              help="Training set (default: pipeline/models/data/intent_category_severity.jsonl).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where to write the heads (default: pipeline/models/heads_extra, the shipped ones).")
@click.option("--c", "c_grid", type=float, multiple=True,
              help="Only try this regularisation C (repeatable; default: the full grid the shipped heads used).")
@click.option("--cue-weight", "cue_weights", type=float, multiple=True,
              help="Only try this weight of the cue features (repeatable; default: the full grid).")
def train_intents(rules_file, data_file, out, c_grid, cue_weights):
    """Retrain the intent, complaint category and severity heads; writes a model card.

    \b
    Example:
      ecoute train-intents --out my-intent-heads   # then models.intent_heads: my-intent-heads
    """
    from pipeline.models.intents import EXTRA_HEADS_DIR, TRAINING_FILE
    from pipeline.models.train_labels import C_GRID, CUE_WEIGHTS
    from pipeline.models.train_labels import train as run_training

    logging.getLogger().setLevel(logging.INFO)
    card = run_training(_rules(rules_file), Path(data_file) if data_file else TRAINING_FILE,
                        Path(out) if out else EXTRA_HEADS_DIR, tuple(c_grid) or C_GRID, tuple(cue_weights) or CUE_WEIGHTS)
    for task, scores in card["metrics"].items():
        click.echo(f"{task}: " + ", ".join(f"{k} {v}" for k, v in scores.items()))


if __name__ == "__main__":
    main()

"""The desk: `ecoute escalate`, `ecoute users …`, and privacy (`erase`, `prune`).
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import sys

import click

from pipeline.cli.common import DB_HELP, RULES_HELP, open_rules, open_store


@click.command()
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

    rules = open_rules(rules_file)
    store = open_store(db)
    result = run_escalation(store, rules)
    for case_id, stage in result.stages:
        click.echo(f"case #{case_id}: {stage.replace('_', ' ')}")
    for sent in result.sent:
        click.echo(f"{sent.target}: case #{sent.case_id} "
                   + ("sent" if sent.error is None else f"failed after {sent.attempts} attempts: {sent.error}"))
    click.echo(f"{len(result.stages)} case stage(s) escalated, {sum(s.error is None for s in result.sent)} "
               f"notification(s) sent")


@click.group()
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
        user = add_user(open_store(db), name, role, password, actor=actor)
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

    found = list_users(open_store(db))
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
        disable_user(open_store(db), name, actor=actor)
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
        enable_user(open_store(db), name, actor=actor)
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
        set_role(open_store(db), name, role, actor=actor)
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
        set_password(open_store(db), name, password, actor=actor)
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
        set_availability(open_store(db), name, availability, actor=actor)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{name} is now {availability}")


@click.command()
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
        removal = erase_author(open_store(db), author, source, actor=actor, dry_run=dry_run)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--author")
    click.echo(removal.line())


@click.command()
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

    days = open_rules(rules_file).privacy.retention_days
    if days is None:
        raise click.ClickException("privacy.retention_days is not set in rules.yaml, so everything is kept; "
                                   "add e.g. `privacy: {retention_days: 365}`")
    removal = prune_store(open_store(db), days, actor=actor, dry_run=dry_run)
    click.echo(f"older than {days} days: {removal.line()}")


COMMANDS = (escalate, users, erase, prune)

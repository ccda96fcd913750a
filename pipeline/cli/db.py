"""The store's schema: `ecoute db upgrade` and `ecoute db current`.
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import click

from pipeline.cli.common import DB_HELP, open_store


@click.group("db")
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
    from pipeline.store.migrations import revision_of

    store = open_store(db)
    click.echo(f"{store.url.split('@')[-1]}: at revision {revision_of(store.url)} (head)")


@db_group.command("current")
@click.option("--db", help=DB_HELP)
def db_current(db):
    """Show the store's revision without migrating it.

    \b
    Example:
      ecoute db current --db team.db
    """
    from pipeline.store import database_url
    from pipeline.store.migrations import HEAD, Unreadable, revision_of

    url = database_url(db)
    try:
        revision = revision_of(url)
    except Unreadable as exc:
        raise click.ClickException(f"cannot read store {url.split('@')[-1]}: {exc}")
    if revision == HEAD:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision or 'none'} (head is {HEAD}; run `ecoute db upgrade`)")


COMMANDS = (db_group,)

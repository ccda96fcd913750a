"""Alembic's environment, configured in code: it migrates the connection that
`pipeline.store.migrations.upgrade` hands it (config.attributes["connection"]), inside that connection's
transaction. Run by hand (`alembic -c …`), it opens $ECOUTE_DB instead; `ecoute db upgrade` is the
usual way."""
import sqlalchemy as sa
from alembic import context

from pipeline.store import database_url


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with sa.create_engine(database_url()).begin() as own:
        run(own)

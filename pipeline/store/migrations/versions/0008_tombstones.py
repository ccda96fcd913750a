"""Tombstones: the keys of deleted, purged and erased mentions, so that a later copy is never stored again.

Revision ID: 0008
Revises: 0007
Step: 0008_tombstones (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0008"
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0008_tombstones")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

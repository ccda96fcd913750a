"""Mentions, classifications, queue_items, cursors and audit_log.

Revision ID: 0001
Revises: (none)
Step: 0001_initial (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0001_initial")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

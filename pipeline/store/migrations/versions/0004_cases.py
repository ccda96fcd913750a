"""Queue items become cases: case_mentions, case_events, SLA and reply columns.

Revision ID: 0004
Revises: 0003
Step: 0005_cases (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0004"
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0005_cases")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

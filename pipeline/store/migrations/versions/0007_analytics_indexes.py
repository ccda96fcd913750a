"""Indexes the analyst API's trend counts read by (pipeline/analytics/trend_counts.py).

Revision ID: 0007
Revises: 0006
Step: 0007_analytics_indexes (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0007"
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0007_analytics_indexes")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

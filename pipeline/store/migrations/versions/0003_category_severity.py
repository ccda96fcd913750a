"""Complaint category and severity on classifications.

Revision ID: 0003
Revises: 0002
Step: 0003_category_severity (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0003"
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0003_category_severity")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

"""Source_health: each listener's last success, error and backoff.

Revision ID: 0002
Revises: 0001
Step: 0002_source_health (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0002"
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0002_source_health")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

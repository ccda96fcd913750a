"""Crisis and spike alerts and their webhook deliveries (pipeline/store/alerts.py).

Revision ID: 0005
Revises: 0004
Step: 0004_alerts (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0005"
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0004_alerts")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

"""Emotion, its probability and the irony probability on classifications (nullable: older labels have none).

Revision ID: 0010
Revises: 0009
Step: 0010_emotion_irony (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0010"
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0010_emotion_irony")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

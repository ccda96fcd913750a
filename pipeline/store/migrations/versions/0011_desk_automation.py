"""Teams, tags and templates on cases, automations fired, case notifications, linked handles, availability.

Revision ID: 0011
Revises: 0010
Step: 0011_desk_automation (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0011"
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0011_desk_automation")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

"""Desk users with roles and password hashes (pipeline/desk/users.py).

Revision ID: 0006
Revises: 0005
Step: 0006_users (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0006"
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0006_users")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

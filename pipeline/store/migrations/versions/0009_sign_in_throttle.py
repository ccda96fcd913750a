"""Failed sign-in counts for throttling, and users' session generation (pipeline/desk/users.py).

Revision ID: 0009
Revises: 0008
Step: 0009_sign_in_throttle (its name in schema_migrations)
"""
from pipeline.store.migrations import apply

revision = "0009"
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0009_sign_in_throttle")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

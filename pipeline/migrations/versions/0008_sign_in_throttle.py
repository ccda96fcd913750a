"""Failed sign-in counts for throttling, and users' session generation (pipeline/users.py).

Revision ID: 0008
Revises: 0007
Step: 0008_sign_in_throttle (its name in schema_migrations)
"""
from pipeline.migrations import apply

revision = "0008"
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("0008_sign_in_throttle")


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

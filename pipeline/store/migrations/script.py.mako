"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
from pipeline.migrations import apply

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply("${up_revision}_name")   # add the step to pipeline.store (or its table family's module)


def downgrade() -> None:
    raise NotImplementedError("Écoute migrations go forward only; restore a backup to go back")

"""batch jobs keep the sha256 of the token their creator may cancel or delete them with

Only the digest is stored: a copy of the database grants no job. Jobs created before
this revision have none, so only an admin key cancels or deletes them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_jobs") as batch_op:
        batch_op.add_column(sa.Column("token_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_jobs") as batch_op:
        batch_op.drop_column("token_sha256")

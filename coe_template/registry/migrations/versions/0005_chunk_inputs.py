"""batch chunk input in a table of its own, deleted once the chunk is done

SQLite rewrites a whole row on every update: with the items in the chunk's row,
claiming and completing a 1,000-item chunk each rewrote its ~150 KB of text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 07:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_chunk_inputs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["batch_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "number"),
    )
    op.execute(
        "INSERT INTO batch_chunk_inputs (job_id, number, items)"
        " SELECT job_id, number, items FROM batch_chunks WHERE status != 'done'"
    )
    with op.batch_alter_table("batch_chunks") as batch_op:
        batch_op.drop_column("items")


def downgrade() -> None:
    with op.batch_alter_table("batch_chunks") as batch_op:
        batch_op.add_column(sa.Column("items", sa.Text(), nullable=False, server_default="[]"))
    same_chunk = (
        "batch_chunk_inputs.job_id = batch_chunks.job_id AND batch_chunk_inputs.number = batch_chunks.number"
    )
    op.execute(
        f"UPDATE batch_chunks SET items = (SELECT items FROM batch_chunk_inputs WHERE {same_chunk})"
        f" WHERE EXISTS (SELECT 1 FROM batch_chunk_inputs WHERE {same_chunk})"
    )
    op.drop_table("batch_chunk_inputs")
    with op.batch_alter_table("batch_chunks") as batch_op:  # done chunks keep '[]': their input is gone
        batch_op.alter_column("items", existing_type=sa.Text(), server_default=None)

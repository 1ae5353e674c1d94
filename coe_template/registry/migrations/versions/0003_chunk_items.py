"""batch input stored with its chunk: one row per chunk instead of one per item

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:10:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

chunks = sa.table(
    "batch_chunks",
    sa.column("job_id", sa.String),
    sa.column("number", sa.Integer),
    sa.column("first", sa.Integer),
    sa.column("last", sa.Integer),
    sa.column("items", sa.Text),
)
items = sa.table(
    "batch_items",
    sa.column("job_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("item_id", sa.String),
    sa.column("text", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("batch_chunks") as batch_op:
        batch_op.add_column(sa.Column("items", sa.Text(), nullable=True))
    connection = op.get_bind()
    for job_id, number, first, last in connection.execute(
        sa.select(chunks.c.job_id, chunks.c.number, chunks.c.first, chunks.c.last)
    ).all():
        rows = connection.execute(
            sa.select(items.c.item_id, items.c.text)
            .where(items.c.job_id == job_id, items.c.position.between(first, last))
            .order_by(items.c.position)
        ).all()
        payload = json.dumps([[item_id, text] for item_id, text in rows], separators=(",", ":"))
        connection.execute(
            sa.update(chunks)
            .where(chunks.c.job_id == job_id, chunks.c.number == number)
            .values(items=payload)
        )
    with op.batch_alter_table("batch_chunks") as batch_op:
        batch_op.alter_column("items", existing_type=sa.Text(), nullable=False)
    op.drop_table("batch_items")


def downgrade() -> None:
    op.create_table(
        "batch_items",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["batch_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "position"),
        sa.UniqueConstraint("job_id", "item_id"),
    )
    connection = op.get_bind()
    for job_id, first, payload in connection.execute(
        sa.select(chunks.c.job_id, chunks.c.first, chunks.c["items"])
    ).all():
        rows = [
            {"job_id": job_id, "position": first + offset, "item_id": item_id, "text": text}
            for offset, (item_id, text) in enumerate(json.loads(payload))
        ]
        if rows:
            connection.execute(sa.insert(items), rows)
    with op.batch_alter_table("batch_chunks") as batch_op:
        batch_op.drop_column("items")

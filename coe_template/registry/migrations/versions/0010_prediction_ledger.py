"""the prediction ledger: one row per prediction answered

The id is a UUIDv7, time-ordered, so that the ledger pages and is expired in
bounded steps by its primary key; nothing here refers to another table, so a
version may be deleted while its predictions stay on record.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(length=63), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=63), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("batch_job_id", sa.String(length=36), nullable=True),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model_name", "created_at"])
    op.create_index(
        "ix_predictions_model_version_time", "predictions", ["model_name", "model_version", "created_at"]
    )
    op.create_index("ix_predictions_correlation", "predictions", ["correlation_id"])


def downgrade() -> None:
    op.drop_table("predictions")

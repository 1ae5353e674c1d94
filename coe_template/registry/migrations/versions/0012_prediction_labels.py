"""labels on ledger predictions (ground truth), and a training job's choice of data

One label per prediction (its primary key is the prediction's id; deleting the
prediction deletes its label). ``training_jobs.data`` says what a version trains
on: ``bundled`` (the server's training data) or ``bundled+labels`` (that and the
labelled ledger rows that kept their text).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_labels",
        sa.Column("prediction_id", sa.String(length=36), nullable=False),
        sa.Column("true_tag", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("labelled_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prediction_id"),
    )
    op.create_index("ix_prediction_labels_created", "prediction_labels", ["created_at"])
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("data", sa.String(length=32), nullable=False, server_default="bundled"))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("data")
    op.drop_table("prediction_labels")

"""training jobs: a version is trained by whichever worker claims its job under a lease

Versions were tracked by the pid of the process training them, which only its own
host can check. A version still ``training`` at the upgrade gets a pending job, so a
runner trains it (its old trainer, if any, cannot finish it: the column it cleared is
gone). The downgrade drops the jobs and brings ``trainer_pid`` back, empty.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    jobs = op.create_table(
        "training_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id"),
    )
    op.create_index("ix_training_jobs_status", "training_jobs", ["status", "created_at"])
    versions = sa.table(
        "model_versions",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        jobs.insert().from_select(
            ["version_id", "status", "attempts", "created_at"],
            sa.select(versions.c.id, sa.literal("pending"), sa.literal(0), versions.c.created_at).where(
                versions.c.status == "training"
            ),
        )
    )
    # Not a batch operation: SQLite (3.35+) drops a column in place, where rebuilding the table
    # would break the foreign keys onto it.
    op.drop_column("model_versions", "trainer_pid")


def downgrade() -> None:
    op.add_column("model_versions", sa.Column("trainer_pid", sa.Integer(), nullable=True))
    op.drop_index("ix_training_jobs_status", table_name="training_jobs")
    op.drop_table("training_jobs")

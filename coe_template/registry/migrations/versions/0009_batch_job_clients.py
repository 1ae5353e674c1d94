"""batch jobs record the client that queued them, for per-client quotas

``client`` is who sent the upload: ``key:`` and a digest of the bearer key it came
with, or ``addr:`` and the client's address (as the server sees it, after the proxy
headers it is told to trust). Jobs from before have none and count toward no client's
quota, only toward the overall one. A job may also now be ``uploading``: written a
chunk at a time, claimable by no runner until its last chunk is in (a status, no
column: nothing to migrate).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_jobs") as batch:
        batch.add_column(sa.Column("client", sa.String(length=80), nullable=True))
        batch.create_index("ix_batch_jobs_status_client", ["status", "client"])


def downgrade() -> None:
    # Jobs still uploading belong to no server any more: they would be claimable as nothing.
    op.execute(
        "DELETE FROM batch_chunk_inputs WHERE job_id IN (SELECT id FROM batch_jobs WHERE status = 'uploading')"
    )
    op.execute(
        "DELETE FROM batch_chunks WHERE job_id IN (SELECT id FROM batch_jobs WHERE status = 'uploading')"
    )
    op.execute("DELETE FROM batch_jobs WHERE status = 'uploading'")
    with op.batch_alter_table("batch_jobs") as batch:
        batch.drop_index("ix_batch_jobs_status_client")
        batch.drop_column("client")

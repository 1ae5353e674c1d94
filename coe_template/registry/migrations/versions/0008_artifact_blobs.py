"""artifacts as blobs in the registry's database, for COE_ARTIFACT_STORE=db

A cluster then needs nothing but its database: every replica fetches a version's
files from here (and keeps them in its local cache). The digests that loading
trusts stay in model_versions.artifacts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'artifact_blobs',
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('run_id', 'name'),
    )


def downgrade() -> None:
    op.drop_table('artifact_blobs')

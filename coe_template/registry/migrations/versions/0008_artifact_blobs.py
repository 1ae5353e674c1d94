"""artifacts as blobs in the registry's database, for COE_ARTIFACT_STORE=db

A cluster then needs nothing but its database: every replica fetches a version's
files from here (and keeps them in its local cache). The digests that loading
trusts stay in model_versions.artifacts.

The downgrade drops the table, and with it every artifact kept in the database,
while the versions that point at them stay ``ready``: it refuses while the table
has rows, unless forced with the x-argument ``force=true`` (Alembic's ``-x``;
programmatically ``Config.cmd_opts = Namespace(x=["force=true"])``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:00:00
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifact_blobs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name"),
    )


def downgrade() -> None:
    forced = context.get_x_argument(as_dictionary=True).get("force") == "true"
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM artifact_blobs")).scalar()
    if rows and not forced:
        raise RuntimeError(
            f"artifact_blobs holds {rows} file(s) of runs that versions point at: downgrading below 0008 "
            "would drop them; move them to a directory store first (models export/import), or force it "
            "with -x force=true"
        )
    op.drop_table("artifact_blobs")

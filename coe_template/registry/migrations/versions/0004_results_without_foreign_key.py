"""batch results without a foreign key to their job

A result is only ever written by the worker holding its chunk, in the transaction
that counts it on its job (a conditional update: no running job, nothing stored),
and deleting a job deletes its results. The per-row key check added nothing to
that, and on PostgreSQL it was half the cost of storing a chunk (a trigger and a
row lock on the job per result).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 07:50:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: SQLite's constraint has no name; this convention gives it one alembic can drop.
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_batch_results_job_id_batch_jobs"
POSTGRES_FK = "batch_results_job_id_fkey"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("batch_results", naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint(SQLITE_FK, type_="foreignkey")
    else:
        op.drop_constraint(POSTGRES_FK, "batch_results", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("batch_results", naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.create_foreign_key(SQLITE_FK, "batch_jobs", ["job_id"], ["id"], ondelete="CASCADE")
    else:
        op.create_foreign_key(
            POSTGRES_FK, "batch_results", "batch_jobs", ["job_id"], ["id"], ondelete="CASCADE"
        )

"""the registry's history: an append-only, hash-chained table of events

Triggers refuse every UPDATE and DELETE of an event (and TRUNCATE on PostgreSQL). The aliases
that exist already are recorded as they stand (``alias.set``, actor ``migration``, at the time
each was last moved), in the order they were moved, so that "what served at time T" has an
answer from then on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:30:00
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from coe_template.registry.events import GENESIS, event_hash
from coe_template.registry.schema import utc

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_REFUSED = "registry_events is append-only: events are never updated or deleted"


def upgrade() -> None:
    events = op.create_table(
        "registry_events",
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=63), nullable=False),
        sa.Column("alias", sa.String(length=63), nullable=True),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
    )
    op.create_index("ix_registry_events_model", "registry_events", ["model", "sequence"])
    _record_aliases(events)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION registry_events_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSED}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER registry_events_append_only BEFORE UPDATE OR DELETE ON registry_events "
            "FOR EACH ROW EXECUTE FUNCTION registry_events_refuse()"
        )
        op.execute(
            "CREATE TRIGGER registry_events_no_truncate BEFORE TRUNCATE ON registry_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION registry_events_refuse()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER registry_events_no_{verb.lower()} BEFORE {verb} ON registry_events "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"
            )


def _record_aliases(events: sa.Table) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT m.name AS model, a.name AS alias, v.version AS version, a.updated_at AS at "
            "FROM aliases a JOIN models m ON m.id = a.model_id JOIN model_versions v ON v.id = a.version_id "
            "ORDER BY a.updated_at, a.id"
        )
    ).all()
    previous = GENESIS
    for sequence, row in enumerate(rows, start=1):
        # SQLite hands a timestamp read through text() back as a string
        at = utc(datetime.fromisoformat(row.at) if isinstance(row.at, str) else row.at)
        values: dict[str, object] = {
            "sequence": sequence,
            "at": at,
            "actor": "migration",
            "action": "alias.set",
            "model": row.model,
            "alias": row.alias,
            "from_version": None,
            "to_version": row.version,
            "reason": "recorded as it stood when the history began (migration 0011)",
            "request_id": None,
            "previous_hash": previous,
        }
        values["hash"] = previous = event_hash(values)
        op.bulk_insert(events, [values])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE registry_events")
        op.execute("DROP FUNCTION registry_events_refuse()")
    else:
        op.drop_table("registry_events")

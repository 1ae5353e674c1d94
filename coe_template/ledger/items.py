"""Batch items in the ledger: written by the runner in the transaction that stores the chunk's results
(durable, exactly once: a chunk given back or lost stores neither), found again by job and item id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from coe_template.ledger.ids import new_prediction_id
from coe_template.ledger.modes import LogMode
from coe_template.ledger.records import Answered
from coe_template.ledger.schema import PredictionRow

_TABLE = PredictionRow.__table__


def record_items(
    connection: Connection,
    mode: LogMode,
    job: tuple[str, str, int],
    items: Sequence[tuple[str, str]],
    tags: Sequence[str],
    probabilities: Sequence[Sequence[float]],
    labels: Sequence[str],
) -> int:
    """Add the ledger's rows of a chunk's items (``job``: its id, model and version) to ``connection``'s
    transaction, as ``mode`` keeps them; the item id is the row's correlation id. The rows added."""
    if not mode.keeps_any:
        return 0
    job_id, model_name, version = job
    rows = [
        Answered(
            new_prediction_id(), model_name, version, None, "batch", tag,
            dict(zip(labels, map(float, row), strict=True)), None, None, item_id, text, job_id,
        ).row(mode)
        for (item_id, text), tag, row in zip(items, tags, probabilities, strict=True)
        if mode.chosen()
    ]  # fmt: skip
    if rows:
        connection.execute(insert(_TABLE), rows)
    return len(rows)


def recorded_ids(session: Session, job_id: str, item_ids: Sequence[str]) -> dict[str, str]:
    """The prediction ids the ledger keeps for these items of a job, by item id."""
    if not item_ids:
        return {}
    found = session.execute(
        select(_TABLE.c.correlation_id, _TABLE.c.id).where(
            _TABLE.c.batch_job_id == job_id, _TABLE.c.correlation_id.in_(item_ids)
        )
    )
    return {item_id: prediction_id for item_id, prediction_id in found}

"""The labelled ledger rows a version trains on (``bundled+labels``): text and true tag, read by the runner.

Only rows that kept their text (``COE_PREDICTION_LOG=full``) can be learnt from. The runner reads
them and hands them to the training child as plain pairs: the child never gets a database engine.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from coe_template.ledger.label_schema import LabelRow
from coe_template.ledger.schema import PredictionRow
from coe_template.registry.db import reader

_labels, _predictions = LabelRow.__table__, PredictionRow.__table__
#: The most labelled rows one training reads (the latest labelled): a bound on what crosses to the child.
MAX_LABELLED_ROWS = 200_000


def labelled_texts(engine: Engine, model: str, limit: int = MAX_LABELLED_ROWS) -> list[tuple[str, str]]:
    """``(text, true tag)`` of the model's labelled predictions with their text, oldest label first
    (of one text labelled several times, the last one is the latest)."""
    labelled_at = func.coalesce(_labels.c.corrected_at, _labels.c.created_at)
    query = (
        select(_predictions.c.text, _labels.c.true_tag)
        .select_from(_predictions.join(_labels, _labels.c.prediction_id == _predictions.c.id))
        .where(_predictions.c.model_name == model, _predictions.c.text.is_not(None))
        .order_by(labelled_at.desc(), _predictions.c.id.desc())
        .limit(limit)
    )
    with reader(engine).connect() as connection:
        rows = [(text, tag) for text, tag in connection.execute(query)]
    return rows[::-1]

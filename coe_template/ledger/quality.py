"""A version's live quality: its ledger predictions against their labels.

Everything follows from the confusion counts, one SQL ``GROUP BY (tag, true_tag)``, so
memory stays bounded however many predictions are on record; the label delay's two
percentiles are one ordered row each (``LIMIT 1 OFFSET k``), in the database too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from coe_template.errors import InvalidInput
from coe_template.ledger.label_schema import LabelRow
from coe_template.ledger.schema import PredictionRow
from coe_template.registry.db import reader
from coe_template.registry.schema import utc

_labels, _predictions = LabelRow.__table__, PredictionRow.__table__
#: (predicted tag, true tag) → predictions.
Counts = Mapping[tuple[str, str], int]
NO_LABELS = "no prediction of this version in the period has a label yet: nothing to measure"


@dataclass(frozen=True)
class Figures:
    """What the confusion counts say: accuracy, weighted F1, each tag's precision/recall/F1/support."""

    labelled: int
    accuracy: float
    f1_weighted: float
    #: tag → precision (None if the model never predicted it), recall (None if it never was the truth),
    #: f1 and support (labelled predictions whose true tag it is).
    per_tag: dict[str, dict[str, Any]]
    #: The tags, sorted; ``matrix[i][j]``: predictions of ``tags[j]`` whose true tag is ``tags[i]``.
    tags: list[str]
    matrix: list[list[int]]


def figures(counts: Counts) -> Figures | None:
    """The figures of non-empty counts (None for none): as scikit-learn's, ``zero_division=0`` for F1."""
    total = sum(counts.values())
    if total == 0:
        return None
    tags = sorted({tag for pair in counts for tag in pair})
    index = {tag: i for i, tag in enumerate(tags)}
    matrix = [[0] * len(tags) for _ in tags]
    for (guess, true), n in counts.items():
        matrix[index[true]][index[guess]] += n
    per_tag: dict[str, dict[str, Any]] = {}
    weighted = 0.0
    for i, tag in enumerate(tags):
        hit = matrix[i][i]
        support = sum(matrix[i])
        guessed = sum(row[i] for row in matrix)
        precision = hit / guessed if guessed else None
        recall = hit / support if support else None
        f1 = 2 * hit / (support + guessed) if support + guessed else 0.0
        per_tag[tag] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        weighted += f1 * support
    accuracy = sum(matrix[i][i] for i in range(len(tags))) / total
    return Figures(total, accuracy, weighted / total, per_tag, tags, matrix)


@dataclass(frozen=True)
class Quality:
    """A version's predictions in ``[since, until)`` and how many were labelled, with the figures of those."""

    model: str
    version: int
    since: datetime | None
    until: datetime | None
    predictions: int
    figures: Figures | None
    #: Seconds from prediction to (first) label: the median and the 95th percentile (nearest rank).
    delay_p50: float | None
    delay_p95: float | None

    @property
    def labelled(self) -> int:
        return 0 if self.figures is None else self.figures.labelled

    @property
    def labelled_share(self) -> float | None:
        return self.labelled / self.predictions if self.predictions else None

    @property
    def message(self) -> str:
        if self.figures is None:
            return NO_LABELS
        return f"{self.labelled} of {self.predictions} predictions labelled"


def _delay(connection: Connection) -> ColumnElement[Any]:
    """Seconds from the prediction to its label, in the dialect's arithmetic."""
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", _labels.c.created_at - _predictions.c.created_at)
    return (func.julianday(_labels.c.created_at) - func.julianday(_predictions.c.created_at)) * 86400.0


class LiveQuality:
    """Quality from the ledger and its labels; the engine is the registry's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def of_version(
        self, model: str, version: int, since: datetime | None = None, until: datetime | None = None
    ) -> Quality:
        since, until = utc(since), utc(until)  # SQLite compares the text of UTC times
        if since is not None and until is not None and since >= until:
            raise InvalidInput(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
        where = [_predictions.c.model_name == model, _predictions.c.model_version == version]
        if since is not None:
            where.append(_predictions.c.created_at >= since)
        if until is not None:
            where.append(_predictions.c.created_at < until)
        joined = _predictions.join(_labels, _labels.c.prediction_id == _predictions.c.id)
        with reader(self.engine).connect() as connection:
            predictions = connection.execute(select(func.count()).where(and_(*where))).scalar_one()
            pairs = connection.execute(
                select(_predictions.c.tag, _labels.c.true_tag, func.count())
                .select_from(joined)
                .where(*where)
                .group_by(_predictions.c.tag, _labels.c.true_tag)
            )
            found = figures({(tag, true): n for tag, true, n in pairs})
            delays: list[float | None] = [None, None]
            if found is not None:
                delay = _delay(connection).label("delay")
                for i, share in enumerate((0.5, 0.95)):
                    rank = max(math.ceil(share * found.labelled), 1) - 1  # nearest rank, from 0
                    query = select(delay).select_from(joined).where(*where)
                    value = connection.execute(
                        query.order_by(literal_column("delay")).limit(1).offset(rank)
                    ).scalar_one()
                    delays[i] = max(float(value), 0.0)
        return Quality(model, version, since, until, predictions, found, delays[0], delays[1])

    def by_version(self) -> dict[tuple[str, int], Counts]:
        """Every labelled version's confusion counts, all time: the scrape's gauges (one GROUP BY)."""
        joined = _predictions.join(_labels, _labels.c.prediction_id == _predictions.c.id)
        query = (
            select(
                _predictions.c.model_name,
                _predictions.c.model_version,
                _predictions.c.tag,
                _labels.c.true_tag,
            )
            .add_columns(func.count())
            .select_from(joined)
            .group_by(
                _predictions.c.model_name,
                _predictions.c.model_version,
                _predictions.c.tag,
                _labels.c.true_tag,
            )
        )
        counts: dict[tuple[str, int], dict[tuple[str, str], int]] = {}
        with reader(self.engine).connect() as connection:
            for model, version, tag, true, n in connection.execute(query):
                counts.setdefault((model, version), {})[(tag, true)] = n
        return dict(counts.items())

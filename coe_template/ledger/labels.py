"""Labels: the true tag of predictions on record, given after the fact (ground truth).

A label names its prediction by the ledger's id, or by the client's own id for the
text (``correlation_id``) when that names exactly one prediction. Each item of a
batch gets its own outcome; one bad item never refuses the others:

- ``created``: the prediction had no label; ``unchanged``: it had this one already
  (sending a label twice is one label);
- ``corrected``: it had another and the item said ``correction``; ``conflict``: it
  had another and the item did not say so (the label on record stays);
- ``invalid_id`` (not a UUID), ``not_found``, ``ambiguous`` (a correlation id of
  several predictions), ``unknown_tag`` (not a tag of the model that predicted it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy import exc as sa_exc

from coe_template.errors import InvalidInput
from coe_template.ledger.label_schema import LabelRow
from coe_template.ledger.schema import PredictionRow
from coe_template.model.data import OTHER_TAG
from coe_template.registry.schema import utcnow

_labels, _predictions = LabelRow.__table__, PredictionRow.__table__
#: Every outcome an item can have; the first three are successes.
OUTCOMES = (
    "created",
    "unchanged",
    "corrected",
    "conflict",
    "invalid_id",
    "not_found",
    "ambiguous",
    "unknown_tag",
)
#: Predictions a correlation id may name that are listed when it is ambiguous.
_NAMED = 3


@dataclass(frozen=True)
class LabelRequest:
    """One item: the prediction (by ``prediction_id`` or by the client's ``correlation_id``) and its true tag."""

    true_tag: str
    prediction_id: str | None = None
    correlation_id: str | None = None
    source: str | None = None
    correction: bool = False

    @classmethod
    def parse(cls, index: int, item: dict[str, Any]) -> LabelRequest:
        """An item of a request; :class:`InvalidInput` unless it names its prediction exactly one way."""
        prediction_id, correlation_id = item.get("prediction_id"), item.get("id")
        if (prediction_id is None) == (correlation_id is None):
            raise InvalidInput(
                f"labels[{index}]: name the prediction by prediction_id (the ledger's id) or by id "
                "(your own id for the text), exactly one of them"
            )
        return cls(
            true_tag=item["true_tag"],
            prediction_id=prediction_id,
            correlation_id=correlation_id,
            source=item.get("source"),
            correction=bool(item.get("correction", False)),
        )


@dataclass(frozen=True)
class LabelOutcome:
    """What became of one item: its outcome, the prediction it labelled (when found) and why, if refused."""

    status: str
    prediction_id: str | None
    correlation_id: str | None
    true_tag: str
    error: str | None = None


@dataclass(frozen=True)
class _Predicted:
    id: str
    model: str
    version: int
    tags: frozenset[str]


def _valid_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class Labels:
    """Records labels against the ledger; the engine is the registry's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, requests: Sequence[LabelRequest], labelled_by: str) -> list[LabelOutcome]:
        """Each item's outcome, in order; all that succeed are written in one transaction.

        Two batches labelling the same prediction at once: the one that loses the race
        is read again (its items then find the other's label), once.
        """
        try:
            return self._record(requests, labelled_by)
        except sa_exc.IntegrityError:
            return self._record(requests, labelled_by)

    def _record(self, requests: Sequence[LabelRequest], labelled_by: str) -> list[LabelOutcome]:
        now = utcnow()
        with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (a read, then writes)
            by_id = {_valid_uuid(r.prediction_id) for r in requests if r.prediction_id is not None} - {None}
            by_correlation = {r.correlation_id for r in requests if r.correlation_id is not None}
            columns = (
                _predictions.c.id,
                _predictions.c.model_name,
                _predictions.c.model_version,
                _predictions.c.probabilities,
                _predictions.c.correlation_id,
            )
            found: dict[str, _Predicted] = {}
            correlated: dict[str, list[_Predicted]] = {}
            rows = (
                list(connection.execute(select(*columns).where(_predictions.c.id.in_(by_id))))
                if by_id
                else []
            )
            if by_correlation:
                query = select(*columns).where(_predictions.c.correlation_id.in_(by_correlation))
                rows += list(connection.execute(query.order_by(_predictions.c.id)))
            for row in rows:
                predicted = _Predicted(
                    row.id, row.model_name, row.model_version, frozenset(row.probabilities) | {OTHER_TAG}
                )
                found[row.id] = predicted
                if row.correlation_id in by_correlation:
                    same = correlated.setdefault(row.correlation_id, [])
                    if predicted not in same:
                        same.append(predicted)
            current: dict[str, str] = {
                row.prediction_id: row.true_tag
                for row in connection.execute(
                    select(_labels.c.prediction_id, _labels.c.true_tag).where(
                        _labels.c.prediction_id.in_(list(found))
                    )
                )
            }
            outcomes = []
            for request in requests:
                outcome, write = self._decide(request, found, correlated, current)
                outcomes.append(outcome)
                if write is None:
                    continue
                values = {"true_tag": request.true_tag, "source": request.source, "labelled_by": labelled_by}
                if write == "insert":
                    connection.execute(
                        _labels.insert().values(prediction_id=outcome.prediction_id, created_at=now, **values)
                    )
                else:
                    connection.execute(
                        update(_labels)
                        .where(_labels.c.prediction_id == outcome.prediction_id)
                        .values(corrected_at=now, **values)
                    )
                assert outcome.prediction_id is not None
                current[outcome.prediction_id] = request.true_tag
        return outcomes

    @staticmethod
    def _decide(
        request: LabelRequest,
        found: dict[str, _Predicted],
        correlated: dict[str, list[_Predicted]],
        current: dict[str, str],
    ) -> tuple[LabelOutcome, str | None]:
        """The item's outcome, and the write it needs (``insert``, ``update`` or None)."""

        def refused(status: str, error: str, prediction_id: str | None = None) -> tuple[LabelOutcome, None]:
            return LabelOutcome(status, prediction_id, request.correlation_id, request.true_tag, error), None

        if request.prediction_id is not None:
            prediction_id = _valid_uuid(request.prediction_id)
            if prediction_id is None:
                return refused("invalid_id", "prediction_id is not a UUID (the ledger's ids are UUIDv7)")
            predicted = found.get(prediction_id)
            if predicted is None:
                return refused("not_found", f"no prediction {prediction_id} on record")
        else:
            same = correlated.get(request.correlation_id or "", [])
            if not same:
                return refused("not_found", f"no prediction on record has the id {request.correlation_id!r}")
            if len(same) > 1:
                named = ", ".join(p.id for p in same[:_NAMED]) + (", …" if len(same) > _NAMED else "")
                return refused(
                    "ambiguous",
                    f"{len(same)} predictions on record have the id {request.correlation_id!r} ({named}): "
                    "label them by prediction_id",
                )
            predicted = same[0]
        if request.true_tag not in predicted.tags:
            return refused(
                "unknown_tag",
                f"{request.true_tag!r} is not a tag of {predicted.model!r} version {predicted.version}: "
                f"one of {', '.join(sorted(predicted.tags))}",
                predicted.id,
            )
        ok = LabelOutcome("created", predicted.id, request.correlation_id, request.true_tag)
        before = current.get(predicted.id)
        if before is None:
            return ok, "insert"
        if before == request.true_tag:
            return LabelOutcome("unchanged", predicted.id, request.correlation_id, request.true_tag), None
        if not request.correction:
            return refused(
                "conflict",
                f"prediction {predicted.id} is already labelled {before!r}: "
                "send correction: true to replace its label",
                predicted.id,
            )
        return LabelOutcome("corrected", predicted.id, request.correlation_id, request.true_tag), "update"

"""Labels' outcomes (the spec's ``LabelResult``) and a version's live quality (``Quality``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from coe_template.ledger.quality import Quality
from handlers.schemas.fields import UtcTime


class LabelResultSchema(Schema):
    status = fields.String()
    prediction_id = fields.String(allow_none=True)
    id = fields.String(attribute="correlation_id", allow_none=True)
    true_tag = fields.String()
    error = fields.String(allow_none=True)


class QualitySchema(Schema):
    model = fields.String()
    version = fields.Integer()
    since = UtcTime()
    until = UtcTime()
    predictions = fields.Integer()
    labelled = fields.Integer()
    labelled_share = fields.Float(allow_none=True)
    message = fields.String()
    accuracy = fields.Method("_accuracy")
    f1_weighted = fields.Method("_f1")
    per_tag = fields.Method("_per_tag")
    confusion = fields.Method("_confusion")
    label_delay_seconds = fields.Method("_delay")

    def _accuracy(self, quality: Quality) -> float | None:
        return None if quality.figures is None else quality.figures.accuracy

    def _f1(self, quality: Quality) -> float | None:
        return None if quality.figures is None else quality.figures.f1_weighted

    def _per_tag(self, quality: Quality) -> dict[str, Any] | None:
        return None if quality.figures is None else quality.figures.per_tag

    def _confusion(self, quality: Quality) -> dict[str, Any] | None:
        found = quality.figures
        return None if found is None else {"tags": found.tags, "matrix": found.matrix}

    def _delay(self, quality: Quality) -> dict[str, float] | None:
        if quality.delay_p50 is None or quality.delay_p95 is None:
            return None
        return {"p50": quality.delay_p50, "p95": quality.delay_p95}


label_result_schema = LabelResultSchema()
quality_schema = QualitySchema()

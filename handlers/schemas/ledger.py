"""A recorded prediction (the spec's ``RecordedPrediction``), from :class:`coe_template.ledger.records.Entry`."""

from __future__ import annotations

from marshmallow import Schema, fields

from handlers.schemas.fields import UtcTime


class EntrySchema(Schema):
    prediction_id = fields.String(attribute="id")
    created_at = UtcTime()
    model_name = fields.String()
    model_version = fields.Integer()
    alias = fields.String(allow_none=True)
    source = fields.String()
    predicted_tag = fields.String(attribute="tag")
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    latency_ms = fields.Float(allow_none=True)
    request_id = fields.String(allow_none=True)
    id = fields.String(attribute="correlation_id", allow_none=True)
    batch_job_id = fields.String(allow_none=True)
    text_sha256 = fields.String()
    text = fields.String(allow_none=True)


entry_schema = EntrySchema()

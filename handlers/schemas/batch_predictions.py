"""A batch job and a stored result (the spec's ``BatchJob`` and ``BatchResult``), from
:class:`coe_template.batch.jobs.JobInfo` and :class:`coe_template.batch.jobs.ResultInfo`."""

from __future__ import annotations

from marshmallow import Schema, fields

from handlers.schemas.fields import UtcTime

#: Digits of ``progress`` served: enough to see a job of a million items move, few enough to read.
PROGRESS_DIGITS = 4


class _JobModelSchema(Schema):
    name = fields.String(attribute="model_name")
    version = fields.Integer(attribute="model_version")


class _JobItemsSchema(Schema):
    total = fields.Integer(attribute="total_items")
    done = fields.Integer(attribute="done_items")


_job_model, _job_items = _JobModelSchema(), _JobItemsSchema()


class BatchJobSchema(Schema):
    id = fields.String()
    status = fields.String()
    model = fields.Function(_job_model.dump)
    items = fields.Function(_job_items.dump)
    progress = fields.Function(lambda job: round(job.progress, PROGRESS_DIGITS))
    created_at = UtcTime()
    started_at = UtcTime()
    finished_at = UtcTime()
    expires_at = UtcTime()
    error = fields.String()


class BatchResultSchema(Schema):
    id = fields.String(attribute="item_id")
    predicted_tag = fields.String()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    model_version = fields.Integer()


job_schema = BatchJobSchema()
result_schema = BatchResultSchema()

"""A batch job and a stored result (the spec's ``BatchJob`` and ``BatchResult``), from
:class:`coe_template.batch.jobs.JobInfo` and :class:`coe_template.batch.jobs.ResultInfo`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from coe_template.shapes import batch_job


class _Shaped:
    """A schema whose shape is a function of the package's (there, the CLI prints it too)."""

    def __init__(self, shape: Callable[[Any], dict[str, Any]]) -> None:
        self.shape = shape

    def dump(self, obj: Any, many: bool = False) -> Any:
        return [self.shape(one) for one in obj] if many else self.shape(obj)


class BatchResultSchema(Schema):
    id = fields.String(attribute="item_id")
    predicted_tag = fields.String()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    model_version = fields.Integer()
    prediction_id = fields.String(allow_none=True)


#: The spec's ``BatchJob``: :func:`coe_template.shapes.batch_job`.
job_schema = _Shaped(batch_job)
result_schema = BatchResultSchema()

"""The version that answers (the spec's ``ModelRef``), from :class:`coe_template.serving.Served`."""

from __future__ import annotations

from marshmallow import Schema, fields


class ModelRefSchema(Schema):
    name = fields.String()
    version = fields.Integer()
    run_id = fields.String(attribute="artifacts.run_id")


model_ref_schema = ModelRefSchema()

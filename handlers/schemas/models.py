"""A model (the spec's ``Model``), from :class:`coe_template.registry.ModelInfo`."""

from __future__ import annotations

from marshmallow import Schema, fields

from handlers.schemas.fields import UtcTime


class ModelSchema(Schema):
    name = fields.String()
    description = fields.String()
    created_at = UtcTime()
    latest_version = fields.Integer()
    version_count = fields.Integer()
    aliases = fields.Dict(keys=fields.String(), values=fields.Integer())


model_schema = ModelSchema()

"""A model version (the spec's ``Version``), from :class:`coe_template.registry.VersionInfo`."""

from __future__ import annotations

from marshmallow import Schema, fields

from handlers.schemas.fields import UtcTime


class VersionSchema(Schema):
    model = fields.String()
    version = fields.Integer()
    status = fields.String()
    aliases = fields.List(fields.String())
    created_at = UtcTime()
    finished_at = UtcTime()
    args = fields.Raw()
    dataset = fields.Raw()
    performance = fields.Raw()
    artifacts = fields.Raw()
    run_id = fields.String()
    error = fields.String()


version_schema = VersionSchema()

"""An alias and the version it points (or, once deleted, pointed) at: the spec's ``Alias`` response,
from :class:`coe_template.registry.AliasChange`."""

from __future__ import annotations

from marshmallow import Schema, fields


class AliasSchema(Schema):
    alias = fields.String()
    version = fields.Integer()


alias_schema = AliasSchema()

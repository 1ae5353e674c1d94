"""An alias and the version it points (or, once deleted, pointed) at: the spec's ``Alias`` response,
from :class:`coe_template.registry.AliasChange`."""

from __future__ import annotations

from marshmallow import Schema, fields


class AliasSchema(Schema):
    alias = fields.String()
    version = fields.Integer()


alias_schema = AliasSchema()


class RollbackSchema(Schema):
    """A rollback done: the alias, the version it now points at, and the one it left."""

    alias = fields.String()
    version = fields.Integer(attribute="now")
    rolled_back_from = fields.Integer(attribute="was")


rollback_schema = RollbackSchema()

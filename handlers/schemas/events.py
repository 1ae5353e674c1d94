"""An event of the registry's history: the spec's ``Event``, from :class:`coe_template.registry.events.Event`."""

from __future__ import annotations

from marshmallow import Schema, fields

from coe_template.registry.events import canonical_time


class EventSchema(Schema):
    sequence = fields.Integer()
    #: To the microsecond, as hashed: a client can recompute every hash from what it is served.
    at = fields.Function(lambda event: canonical_time(event.at))
    actor = fields.String()
    action = fields.String()
    model = fields.String()
    alias = fields.String(allow_none=True)
    from_version = fields.Integer(allow_none=True)
    to_version = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    previous_hash = fields.String()
    hash = fields.String()


event_schema = EventSchema()

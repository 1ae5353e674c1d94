"""Fields every resource's schema shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import fields

from coe_template.shapes import utc_time


class UtcTime(fields.Field):
    """A moment as the API serves every time: ISO 8601 in UTC, to the millisecond (``…T01:38:35.538+00:00``)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return utc_time(value)

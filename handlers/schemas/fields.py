"""Fields every resource's schema shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields


class UtcTime(fields.Field):
    """A moment as the API serves every time: ISO 8601 in UTC, to the millisecond (``…T01:38:35.538+00:00``)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds")

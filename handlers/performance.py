"""``GET /performance``: how the serving model scored on its test split."""

from __future__ import annotations

from typing import Any

from coe_template.errors import NotFound
from handlers.context import serving
from handlers.envelope import enveloped


def part(performance: dict[str, Any], filter_: str | None) -> dict[str, Any]:
    """All of a performance report, or the one block the client filtered on."""
    if filter_ is not None and filter_ not in performance:
        raise NotFound(
            f"this performance report has no {filter_!r} part; it has {', '.join(sorted(performance))}"
        )
    return {"performance": performance if filter_ is None else {filter_: performance[filter_]}}


@enveloped()
def get(filter_: str | None = None) -> dict:
    return part(serving().artifacts.performance, filter_)

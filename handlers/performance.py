"""``GET /performance``: how the serving model scored on its test split."""

from __future__ import annotations

from handlers.context import serving
from handlers.envelope import enveloped


@enveloped()
def get(filter_: str | None = None) -> dict:
    performance = serving().performance
    return {"performance": performance if filter_ is None else {filter_: performance[filter_]}}

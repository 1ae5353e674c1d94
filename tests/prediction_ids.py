"""Predictions carry fresh ids (UUIDv7s): check them, then compare the rest of the answer whole."""

from __future__ import annotations

import re
from typing import Any

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def without_ids(response: Any) -> list[dict[str, Any]]:
    """The answer's predictions without their ``prediction_id``, once each is checked: a UUIDv7, all
    different, listed in order in ``X-Prediction-ID``."""
    predictions = response.json()["data"]["predictions"]
    ids = [p["prediction_id"] for p in predictions]
    assert all(UUID7.fullmatch(each) for each in ids), ids
    assert len(set(ids)) == len(ids)
    assert response.headers["x-prediction-id"] == ",".join(ids)
    return [{k: v for k, v in p.items() if k != "prediction_id"} for p in predictions]

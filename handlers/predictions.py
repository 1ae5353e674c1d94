"""``POST /predictions``: tag projects in real time with the ``production`` version."""

from __future__ import annotations

from typing import Any

from coe_template.model.predict import predict
from coe_template.observability import metrics
from coe_template.serving import Served
from handlers.context import serving
from handlers.envelope import enveloped
from handlers.middleware.observe import answered_with
from handlers.schemas.predictions import prediction_schema
from handlers.schemas.served import model_ref_schema


def answer(served: Served, body: dict[str, Any], explain: bool) -> dict[str, Any]:
    """Tag the texts of a body the spec has checked with ``served``: shared by both routes."""
    texts = [item["text"] for item in body["texts"]]
    predictions = predict(texts, served.artifacts, explained=explain)
    metrics.predicted(served, predictions)
    answered_with(served.name, served.version)
    # Unexplained predictions are already the spec's shape: not dumped again, to keep the common case fast.
    return {
        "model": model_ref_schema.dump(served),
        "predictions": prediction_schema.dump(predictions, many=True) if explain else predictions,
    }


@enveloped()
def create(body: dict, explain: bool) -> dict:
    return answer(serving(), body, explain)

"""``/predictions``: tag projects in real time with the ``production`` version (each answer
recorded in the prediction ledger), and read the ledger back."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from coe_template.errors import InvalidInput
from coe_template.ledger.ids import new_prediction_id
from coe_template.ledger.records import Answered
from coe_template.ledger.store import Query
from coe_template.model.predict import predict
from coe_template.observability import current_request_id, metrics
from coe_template.registry import PRODUCTION
from coe_template.serving import Served
from handlers.context import services, serving
from handlers.envelope import enveloped
from handlers.middleware.observe import answered_with
from handlers.schemas.ledger import entry_schema
from handlers.schemas.predictions import prediction_schema
from handlers.schemas.served import model_ref_schema

#: The response header listing the answer's prediction ids, in order.
PREDICTION_IDS = "X-Prediction-ID"


def answer(
    served: Served, body: dict[str, Any], explain: bool, alias: str | None, source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Tag the texts of a body the spec has checked with ``served``, each prediction given an id and
    queued for the ledger (never written here: this may run in the event loop); shared by both routes."""
    items = body["texts"]
    texts = [item["text"] for item in items]
    started = time.perf_counter()
    predictions = predict(texts, served.artifacts, explained=explain)
    latency_ms = (time.perf_counter() - started) * 1000
    metrics.predicted(served, predictions)
    answered_with(served.name, served.version)
    # Unexplained predictions are already the spec's shape: not dumped again, to keep the common case fast.
    shaped: list[dict[str, Any]] = (
        prediction_schema.dump(predictions, many=True) if explain else predictions  # type: ignore[assignment]
    )
    request_id = current_request_id()
    answered = []
    for item, prediction, each in zip(items, predictions, shaped, strict=True):
        prediction_id = each["prediction_id"] = new_prediction_id()
        correlation_id = item.get("id")
        if correlation_id is not None:
            each["id"] = correlation_id
        answered.append(
            Answered(
                prediction_id,
                served.name,
                served.version,
                alias,
                source,
                prediction["predicted_tag"],
                prediction["probabilities"],
                latency_ms,
                request_id,
                correlation_id,
                item["text"],
            )
        )
    services().recorder.record(answered)
    data = {"model": model_ref_schema.dump(served), "predictions": shaped}
    return data, {PREDICTION_IDS: ",".join(each["prediction_id"] for each in shaped)}


@enveloped()
def create(body: dict, explain: bool) -> tuple[dict, dict]:
    return answer(serving(), body, explain, PRODUCTION, "realtime")


@enveloped()
def get(prediction_id: str) -> dict:
    """One recorded prediction (a primary-key read; the model is not involved)."""
    return {"prediction": entry_schema.dump(services().ledger.get(prediction_id))}


@enveloped()
def search(
    model_name: str,
    since: str | None = None,
    until: str | None = None,
    tag: str | None = None,
    version: int | None = None,
    page_size: int = 20,
    page_token: str | None = None,
) -> dict:
    """A model's recorded predictions, oldest first, a page at a time (keyset paging on the id)."""
    query = Query(model_name, _moment("since", since), _moment("until", until), tag, version)
    entries, after = services().ledger.page(query, page_size, page_token)
    return {"predictions": entry_schema.dump(entries, many=True), "next_page_token": after}


def _moment(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 time of the query (the spec bounds its length); one without an offset is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{name}: {value!r} is not a time like 2026-12-08T00:00:00Z") from None

"""``/labels``: the true tags of predictions on record (ground truth), each item answered on its own."""

from __future__ import annotations

from collections import Counter

from coe_template.ledger.labels import LabelRequest
from handlers.batch_predictions import client_of
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.quality import label_result_schema


@enveloped()
def create(body: dict) -> dict:
    """Record every item that can be; a refused item is told in its result, never as the whole answer."""
    ctx = services()
    requests = [LabelRequest.parse(i, item) for i, item in enumerate(body["labels"])]
    outcomes = ctx.labels.record(requests, labelled_by=client_of(ctx.settings))
    return {
        "counts": dict(Counter(outcome.status for outcome in outcomes)),
        "results": label_result_schema.dump(outcomes, many=True),
    }

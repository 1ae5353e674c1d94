"""``POST /predictions``: tag projects in real time with the ``production`` version."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates

from coe_template.predict import predict
from coe_template.serving import Served
from handlers import metrics
from handlers.context import serving
from handlers.envelope import enveloped
from handlers.observe import answered_with


class PredictionRequestSchema(Schema):
    """What the spec cannot say about a body it has already checked the shape of."""

    texts = fields.Raw(required=True)  # a list of {"text": str}, per the spec

    @validates("texts")
    def have_content(self, texts: list[dict[str, str]], **_: object) -> None:
        blank = [n for n, item in enumerate(texts) if not item["text"].strip()]
        if blank:
            raise ValidationError({n: {"text": ["must contain a non-whitespace character"]} for n in blank})


_request = PredictionRequestSchema()


def answer(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """Parse a predictions body and tag its texts with ``served``: shared by both routes."""
    texts = [item["text"] for item in _request.load(body)["texts"]]
    predictions = predict(texts, served.artifacts)
    metrics.predicted(served, predictions)
    answered_with(served.name, served.version)
    return {"model": served.ref(), "predictions": predictions}


@enveloped()
def create(body: dict) -> dict:
    return answer(serving(), body)

"""``POST /predictions``: tag projects in real time with the ``production`` version."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates

from coe_template.predict import predict
from coe_template.serving import Served
from handlers.context import serving
from handlers.envelope import enveloped


class TextSchema(Schema):
    text = fields.String(required=True)

    @validates("text")
    def has_content(self, value: str, **_: object) -> None:
        # The spec bounds the length; it cannot say "not only white space".
        if not value.strip():
            raise ValidationError("must contain a non-whitespace character")


class PredictionRequestSchema(Schema):
    texts = fields.List(fields.Nested(TextSchema), required=True)


_request = PredictionRequestSchema()


def answer(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """Parse a predictions body and tag its texts with ``served``: shared by both routes."""
    texts = [item["text"] for item in _request.load(body)["texts"]]
    return {"model": served.ref(), "predictions": predict(texts, served.artifacts)}


@enveloped()
def create(body: dict) -> dict:
    return answer(serving(), body)

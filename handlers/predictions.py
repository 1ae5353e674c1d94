"""``POST /predictions``: tag projects in real time."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates

from coe_template.predict import predict
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


@enveloped()
def create(body: dict) -> dict:
    texts = [item["text"] for item in _request.load(body)["texts"]]
    artifacts = serving()
    return {"model": {"run_id": artifacts.run_id}, "predictions": predict(texts, artifacts)}

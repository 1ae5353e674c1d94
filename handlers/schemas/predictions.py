"""A prediction with its explanation (the spec's ``Prediction`` and ``Explanation``), from
:class:`coe_template.model.predict.Prediction` and :class:`coe_template.model.explain.Explanation`."""

from __future__ import annotations

from marshmallow import Schema, fields


class TermSchema(Schema):
    term = fields.String()
    analyzer = fields.String()
    weight = fields.Float()


class ExplanationSchema(Schema):
    tag = fields.String()
    intercept = fields.Float()
    logit = fields.Float()
    terms = fields.List(fields.Nested(TermSchema))
    remainder = fields.Float()


class PredictionSchema(Schema):
    """Only for explained predictions: without one, a prediction is served as the package makes it."""

    input_text = fields.String()
    predicted_tag = fields.String()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    explanation = fields.Nested(ExplanationSchema)


prediction_schema = PredictionSchema()

"""Tag texts with a stored run's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from coe_template.data import clean_text
from coe_template.store import Artifacts
from coe_template.train import apply_threshold


class Prediction(TypedDict):
    input_text: str
    predicted_tag: str
    probabilities: dict[str, float]


def predict(texts: Sequence[str], artifacts: Artifacts) -> list[Prediction]:
    """For each text, in order: the text, its tag and the probability of every tag."""
    if not texts:
        return []
    probabilities = artifacts.predictor.predict_proba([clean_text(t) for t in texts])
    tags = apply_threshold(probabilities, artifacts.labels, artifacts.threshold)
    return [
        {
            "input_text": text,
            "predicted_tag": tag,
            "probabilities": dict(zip(artifacts.labels, map(float, row))),
        }
        for text, tag, row in zip(texts, tags, probabilities)
    ]

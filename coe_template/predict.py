"""Tag texts with a stored run's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from coe_template.data import clean_text
from coe_template.store import Artifacts
from coe_template.train import apply_threshold


class Prediction(TypedDict):
    input_text: str
    predicted_tag: str
    probabilities: dict[str, float]


def tag(texts: Sequence[str], artifacts: Artifacts) -> tuple[list[str], np.ndarray]:
    """Each text's tag and probability row (in ``artifacts.labels`` order): real time and batch share it."""
    probabilities = artifacts.predictor.predict_proba([clean_text(t) for t in texts])
    return apply_threshold(probabilities, artifacts.labels, artifacts.threshold), probabilities


def predict(texts: Sequence[str], artifacts: Artifacts) -> list[Prediction]:
    """For each text, in order: the text, its tag and the probability of every tag."""
    if not texts:
        return []
    tags, probabilities = tag(texts, artifacts)
    return [
        {
            "input_text": text,
            "predicted_tag": predicted,
            "probabilities": dict(zip(artifacts.labels, row, strict=True)),
        }
        for text, predicted, row in zip(texts, tags, probabilities.tolist(), strict=True)
    ]

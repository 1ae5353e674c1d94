"""Tag texts with a stored run's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import numpy as np

from coe_template.artifacts.runs import Artifacts
from coe_template.model.data import clean_text
from coe_template.model.explain import Explanation, explain
from coe_template.model.train import apply_threshold


class Prediction(TypedDict):
    input_text: str
    predicted_tag: str
    probabilities: dict[str, float]
    #: Only when asked for: why the model leaned to its most probable tag.
    explanation: NotRequired[Explanation]


def tag(texts: Sequence[str], artifacts: Artifacts) -> tuple[list[str], np.ndarray]:
    """Each text's tag and probability row (in ``artifacts.labels`` order): real time and batch share it."""
    return _tag([clean_text(t) for t in texts], artifacts)


def _tag(cleaned: Sequence[str], artifacts: Artifacts) -> tuple[list[str], np.ndarray]:
    probabilities = artifacts.predictor.predict_proba(cleaned)
    return apply_threshold(probabilities, artifacts.labels, artifacts.threshold), probabilities


def predict(texts: Sequence[str], artifacts: Artifacts, explained: bool = False) -> list[Prediction]:
    """For each text, in order: the text, its tag and the probability of every tag (and why, if ``explained``)."""
    if not texts:
        return []
    cleaned = [clean_text(t) for t in texts]
    tags, probabilities = _tag(cleaned, artifacts)
    predictions: list[Prediction] = [
        {
            "input_text": text,
            "predicted_tag": predicted,
            "probabilities": dict(zip(artifacts.labels, row, strict=True)),
        }
        for text, predicted, row in zip(texts, tags, probabilities.tolist(), strict=True)
    ]
    if explained:
        for prediction, why in zip(
            predictions, explain(cleaned, probabilities, artifacts.labels, artifacts.predictor), strict=True
        ):
            prediction["explanation"] = why
    return predictions

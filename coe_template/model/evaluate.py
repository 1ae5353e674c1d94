"""Weighted precision/recall/F1 overall, per class and on named slices."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

Metrics = dict[str, float | int]

_CNN = re.compile(r"\b(cnns?|convolution\w*|conv\w*net\w*)\b", re.IGNORECASE)


#: Fewer words than this (title and description together) make a short text.
SHORT_TEXT_WORDS = 15


def short_text(text: str, tag: str) -> bool:
    """Texts with little evidence to go on."""
    return len(text.split()) < SHORT_TEXT_WORDS


def nlp_cnn(text: str, tag: str) -> bool:
    """NLP projects that mention convolutions: vocabulary that pulls towards vision."""
    return tag == "natural-language-processing" and bool(_CNN.search(text))


SLICES: dict[str, Callable[[str, str], bool]] = {
    "short_text": short_text,
    "nlp_cnn": nlp_cnn,
}


def _metrics(y_true: Sequence[str] | np.ndarray, y_pred: Sequence[str] | np.ndarray) -> Metrics:
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="weighted", zero_division=0
    )
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "num_samples": len(y_true),
    }


def evaluate(
    texts: Sequence[str], y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict]:
    """Score predictions against the truth; every block carries ``num_samples``."""
    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true_a, y_pred_a, labels=list(labels), zero_division=0
    )
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "num_samples": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    slices = {}
    for name, member in SLICES.items():
        mask = np.array([member(t, y) for t, y in zip(texts, y_true, strict=True)], dtype=bool)
        slices[name] = (
            _metrics(y_true_a[mask], y_pred_a[mask])
            if mask.any()
            else {"precision": 0.0, "recall": 0.0, "f1": 0.0, "num_samples": 0}
        )
    return {"overall": _metrics(y_true_a, y_pred_a), "class": per_class, "slices": slices}

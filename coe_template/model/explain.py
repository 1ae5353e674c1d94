"""Why a text got its tag: each of its n-grams' exact share of the explained tag's logit.

The classifier is linear over the TF-IDF vector ``x`` of the text, so for the explained
class ``k`` its logit is exactly

    logit = intercept[k] + Σ_j x_j · coef[k, j]

and ``x_j · coef[k, j]`` is the contribution of term ``j`` (non-zero only for terms the
vectorizer made from the text). The explained tag is the most probable one: the tag served,
unless the version's threshold made the prediction ``other``, in which case it is the tag the
model leaned to. With two tags scikit-learn keeps one row of coefficients, for the second tag:
the first tag's logit is its negation (``log p₀/p₁``). With more, it is the softmax's input
for ``k`` (``decision_function``). The top terms, the rest of the contributions summed, and the
intercept add up to the logit.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline

from coe_template.errors import Conflict
from coe_template.model.compiled import Predictor

#: How many terms an explanation lists: the ones that pushed hardest toward the tag.
TOP_TERMS = 10


class CannotExplain(Conflict):
    """The version's model is not a linear classifier over named TF-IDF terms."""


@dataclass(frozen=True)
class Term:
    #: The n-gram as the vectorizer made it: after cleaning (lower-cased, punctuation gone), and
    #: for ``char_wb`` with the space that pads each word (``" nlp"`` starts a word).
    term: str
    #: Which vectorizer made it: ``word``, ``char_wb`` or ``char`` (its ``analyzer``).
    analyzer: str
    #: ``x_j · coef[k, j]``: how much it added to the logit.
    weight: float


@dataclass(frozen=True)
class Explanation:
    #: The tag explained: the most probable (the one served unless the threshold made it ``other``).
    tag: str
    intercept: float
    #: ``intercept + Σ terms' weights + remainder``.
    logit: float
    #: The largest positive contributions, largest first (fewer when fewer terms pushed that way).
    terms: list[Term]
    #: Every other term's contribution, summed.
    remainder: float


@dataclass(frozen=True)
class _Columns:
    terms: list[str]
    analyzers: list[str]


_columns: weakref.WeakKeyDictionary[Pipeline, _Columns] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def columns(pipeline: Pipeline) -> _Columns:
    """Each feature column's term and analyzer, in the classifier's order (built once per pipeline)."""
    with _lock:
        found = _columns.get(pipeline)
    if found is not None:
        return found
    first = pipeline[0] if len(pipeline) == 2 else None
    parts = [t for _, t in first.transformer_list] if isinstance(first, FeatureUnion) else [first]
    terms: list[str] = []
    analyzers: list[str] = []
    for part in parts:
        vocabulary, analyzer = getattr(part, "vocabulary_", None), getattr(part, "analyzer", None)
        if not isinstance(vocabulary, dict) or not isinstance(analyzer, str):
            raise CannotExplain("this version's model does not name its features: it cannot be explained")
        names = sorted(vocabulary, key=vocabulary.__getitem__)
        terms.extend(names)
        analyzers.extend([analyzer] * len(names))
    coef = getattr(pipeline[-1], "coef_", None)
    if coef is None or coef.shape[1] != len(terms):
        raise CannotExplain("this version's model is not linear in its features: it cannot be explained")
    found = _Columns(terms, analyzers)
    with _lock:
        _columns[pipeline] = found
    return found


def _top(contributions: np.ndarray, where: np.ndarray, named: _Columns, top: int) -> list[int]:
    """The positions of the ``top`` largest positive contributions, largest first, ties by analyzer and term.

    ``argpartition`` finds the ``top``-th largest value in linear time; only the values at least that
    large (ties included, so the order stays the full sort's) are sorted, not every term of the text.
    """
    candidates = np.flatnonzero(contributions > 0)
    if len(candidates) > top > 0:
        values = contributions[candidates]
        least = values[np.argpartition(-values, top - 1)[:top]].min()
        candidates = candidates[values >= least]
    order = sorted(
        candidates.tolist(),
        key=lambda i: (-contributions[i], named.analyzers[where[i]], named.terms[where[i]]),
    )
    return order[:top]


def explain(
    cleaned: Sequence[str],
    probabilities: np.ndarray,
    labels: Sequence[str],
    predictor: Predictor,
    top: int = TOP_TERMS,
) -> list[Explanation]:
    """An explanation per text (already cleaned, as it was predicted) of its most probable tag."""
    pipeline = predictor.pipeline
    named = columns(pipeline)
    classifier = pipeline[-1]
    coef, intercepts = np.asarray(classifier.coef_), np.asarray(classifier.intercept_)
    features = predictor.features(cleaned)
    explanations = []
    for row, k in enumerate(probabilities.argmax(axis=1).tolist()):
        if coef.shape[0] == 1:  # two tags: one row, for the second; the first's logit is its negation
            sign = 1.0 if k == 1 else -1.0
            weights, intercept = sign * coef[0], sign * float(intercepts[0])
        else:
            weights, intercept = coef[k], float(intercepts[k])
        start, end = features.indptr[row], features.indptr[row + 1]
        where = features.indices[start:end]
        contributions = features.data[start:end] * weights[where]
        listed = _top(contributions, where, named, top)
        rest = np.delete(contributions, listed)
        explanations.append(
            Explanation(
                tag=labels[k],
                intercept=intercept,
                logit=intercept + float(contributions.sum()),
                terms=[
                    Term(named.terms[where[i]], named.analyzers[where[i]], float(contributions[i]))
                    for i in listed
                ],
                remainder=float(rest.sum()),
            )
        )
    return explanations

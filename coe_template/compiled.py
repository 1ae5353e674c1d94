"""A fitted TF-IDF + logistic-regression pipeline, compiled into plain array arithmetic.

``pipeline.predict_proba`` on one short text spends almost a millisecond in input
validation and sparse-matrix bookkeeping; the arithmetic itself is a few dozen
multiply-adds. Compiling once, when a version loads, keeps the vectorizer's own
analyzer (so tokens, stop words and n-grams are scikit-learn's) and replaces the
rest by the same formulas over NumPy arrays:

    w = count, or 1 + log(count) when sublinear;  x = w·idf / ‖w·idf‖
    scores = x·coefᵀ + intercept  →  softmax (multinomial) or logistic (binary)

Anything else a pipeline could hold is refused with :class:`Unsupported`, and the
caller falls back to scikit-learn, saying so: never a silently different answer.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)


class Unsupported(ValueError):
    """The pipeline holds something the compiled form does not reproduce exactly."""


class Predictor(Protocol):
    #: ``"compiled"`` or ``"scikit-learn"``: which code computes the probabilities.
    kind: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class SklearnPredictor:
    """The pipeline itself: the reference, and the fallback for what cannot be compiled."""

    kind = "scikit-learn"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))


class CompiledPredictor:
    """``scores = Σ w·idf·coef / ‖w·idf‖ + intercept`` with ``w = 1 + log(count)`` (or the count).

    The products ``idf·coef`` and ``idf²`` are folded in at compile time; a term seen
    once has ``w = 1`` exactly, so most texts need no multiplication by ``w`` at all.
    """

    kind = "compiled"

    def __init__(self, analyze: Callable[[str], list[str]], vocabulary: dict[str, int],
                 idf: np.ndarray | None, sublinear: bool, l2: bool,
                 coef: np.ndarray, intercept: np.ndarray, binary: bool) -> None:
        idf = np.ones(coef.shape[1]) if idf is None else np.asarray(idf, dtype=np.float64)
        self._analyze = analyze
        self._vocabulary = vocabulary
        self._sublinear = sublinear
        self._l2 = l2
        self._term_scores = np.ascontiguousarray(coef.T * idf[:, np.newaxis], dtype=np.float64)  # (terms, outputs)
        self._idf_squared = idf * idf
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._binary = binary

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Each row is computed by the same operations in the same order whatever else is in
        the batch, so a text gets bit-identical probabilities alone or among others."""
        lookup = self._vocabulary.get
        indices: list[int] = []
        counts: list[int] = []
        starts: list[int] = []  # where each text with a known term begins in ``indices``
        known: list[int] = []  # which texts have a known term; the others score the intercept alone
        for row, text in enumerate(texts):
            terms = Counter([j for j in map(lookup, self._analyze(text)) if j is not None])
            if terms:
                starts.append(len(indices))
                known.append(row)
                indices.extend(terms)
                counts.extend(terms.values())
        scores = np.zeros((len(texts), self._term_scores.shape[1]))
        if indices:
            columns = np.array(indices, dtype=np.intp)
            term_scores = self._term_scores[columns]
            squares = self._idf_squared[columns]
            if max(counts) > 1:  # otherwise every w is exactly 1
                w = np.array(counts, dtype=np.float64)
                if self._sublinear:
                    np.log(w, out=w)
                    w += 1.0
                term_scores *= w[:, np.newaxis]
                squares *= w * w
            summed = np.add.reduceat(term_scores, starts, axis=0)
            if self._l2:
                summed /= np.sqrt(np.add.reduceat(squares, starts))[:, np.newaxis]
            if len(known) == len(texts):
                scores = summed
            else:
                scores[known] = summed
        scores += self._intercept
        if self._binary:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


def word_analyzer(vectorizer: TfidfVectorizer) -> Callable[[str], list[str]]:
    """The vectorizer's analyzer; for plain word n-grams, the same terms built with fewer steps.

    scikit-learn's word analyzer goes through a chain of calls and a Python loop per n-gram;
    for the configurations ``coe-template train`` makes (a token pattern, stop words or none,
    n-grams from 1 up) the same list comes from ``findall``, a filter and ``zip``.
    """
    analyze = vectorizer.build_analyzer()
    plain = (vectorizer.analyzer == "word" and vectorizer.preprocessor is None and vectorizer.tokenizer is None
             and not vectorizer.lowercase and vectorizer.strip_accents is None
             and vectorizer.token_pattern is not None and vectorizer.ngram_range[0] == 1)
    if not plain or re.compile(vectorizer.token_pattern).groups > 1:
        return analyze  # sklearn refuses such a pattern itself; its analyzer gives the error
    find = re.compile(vectorizer.token_pattern).findall
    stop = vectorizer.get_stop_words() or frozenset()
    longest = vectorizer.ngram_range[1]

    def terms(text: str) -> list[str]:
        tokens = [w for w in find(text) if w not in stop] if stop else find(text)
        grams = list(tokens)
        for n in range(2, longest + 1):
            grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
        return grams

    return terms


def compile_pipeline(pipeline: Pipeline) -> CompiledPredictor:
    """Compile a fitted pipeline, or raise :class:`Unsupported` naming what stands in the way."""
    steps = [step for _, step in getattr(pipeline, "steps", [])]
    if len(steps) != 2 or type(steps[0]) is not TfidfVectorizer or type(steps[1]) is not LogisticRegression:
        raise Unsupported(f"expected TfidfVectorizer → LogisticRegression, found {[type(s).__name__ for s in steps]}")
    vectorizer, classifier = steps
    if vectorizer.binary:
        raise Unsupported("binary term counts are not compiled")
    if vectorizer.norm not in ("l2", None):
        raise Unsupported(f"norm {vectorizer.norm!r} is not compiled")
    if np.dtype(vectorizer.dtype) != np.float64:
        raise Unsupported(f"dtype {vectorizer.dtype} would round differently from float64")
    if vectorizer.input != "content":
        raise Unsupported(f"input {vectorizer.input!r}: only texts are compiled")
    if getattr(classifier, "multi_class", "auto") not in ("auto", "multinomial", "deprecated"):
        raise Unsupported(f"multi_class {classifier.multi_class!r} is not compiled")
    classes = len(classifier.classes_)
    if classifier.coef_.shape != (1 if classes == 2 else classes, len(vectorizer.vocabulary_)):
        raise Unsupported(f"coefficients of shape {classifier.coef_.shape} do not match the vocabulary")
    return CompiledPredictor(
        analyze=word_analyzer(vectorizer),
        vocabulary={str(term): int(j) for term, j in vectorizer.vocabulary_.items()},
        idf=vectorizer.idf_ if vectorizer.use_idf else None,
        sublinear=bool(vectorizer.sublinear_tf),
        l2=vectorizer.norm == "l2",
        coef=classifier.coef_,
        intercept=classifier.intercept_,
        binary=classes == 2,
    )


def predictor_for(pipeline: Pipeline) -> Predictor:
    """The compiled predictor when it reproduces the pipeline, else the pipeline, logged."""
    try:
        return compile_pipeline(pipeline)
    except Unsupported as exc:
        log.warning("predicting with scikit-learn, not compiled: %s", exc)
        return SklearnPredictor(pipeline)

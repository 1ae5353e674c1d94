"""A fitted TF-IDF + logistic-regression pipeline, compiled into plain array arithmetic.

``pipeline.predict_proba`` on one short text spends almost a millisecond in input
validation and sparse-matrix bookkeeping; the arithmetic itself is a few dozen
multiply-adds. Compiling once, when a version loads, keeps the vectorizers' terms
(scikit-learn's analyzers, or equivalents proven equal by tests) and replaces the
rest by the same formulas over NumPy arrays, for each block of features:

    w = count, or 1 + log(count) when sublinear;  x = weight · w·idf / ‖w·idf‖
    scores = Σ_blocks x·coefᵀ + intercept  →  softmax (multinomial) or logistic (binary)

A block is the one ``TfidfVectorizer`` of ``Pipeline([tfidf, clf])``, or each vectorizer of
``Pipeline([FeatureUnion([...]), clf])`` (word and character n-grams side by side, with the
union's ``transformer_weights``). Anything else a pipeline could hold is refused with
:class:`Unsupported`, and the caller falls back to scikit-learn, saying so: never a
silently different answer.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

log = logging.getLogger(__name__)

Analyzer = Callable[[str], list[str]]

#: scikit-learn's own rule for runs of whitespace in character analyzers (``_VectorizerMixin._white_spaces``).
_WHITE_SPACES = re.compile(r"\s\s+")
#: Words whose ``char_wb`` n-gram columns a block keeps; emptied when full, so memory stays bounded.
WORD_CACHE_SIZE = 20_000
#: Only words up to this length are kept: the cache's memory is then at most about
#: ``WORD_CACHE_SIZE × CACHED_WORD_LENGTH`` columns, whatever words clients send.
CACHED_WORD_LENGTH = 40


class Unsupported(ValueError):
    """The pipeline holds something the compiled form does not reproduce exactly."""


class Predictor(Protocol):
    #: ``"compiled"`` or ``"scikit-learn"``: which code computes the probabilities.
    kind: str
    #: The fitted pipeline, whatever computes its answers (its coefficients explain them).
    pipeline: Pipeline

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """What the classifier sees: one row of TF-IDF weights per text (the union's blocks side by side)."""
        ...


class SklearnPredictor:
    """The pipeline itself: the reference, and the fallback for what cannot be compiled."""

    kind = "scikit-learn"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.pipeline[:-1].transform(list(texts)))


class Block:
    """One vectorizer's share of the scores: ``Σ w·idf·weight·coef / ‖w·idf‖`` over its terms in a text.

    The products ``idf·weight·coef`` and ``idf²`` are folded in at compile time; a term seen
    once has ``w = 1`` exactly, so most texts need no multiplication by ``w`` at all.
    """

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, weight: float) -> None:
        terms = len(vectorizer.vocabulary_)
        idf = np.asarray(vectorizer.idf_, dtype=np.float64) if vectorizer.use_idf else np.ones(terms)
        self.analyze = fast_analyzer(vectorizer)
        self.vocabulary = {str(term): int(j) for term, j in vectorizer.vocabulary_.items()}
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.l2 = vectorizer.norm == "l2"
        self.weight = weight
        self.idf = idf
        self.term_scores = np.ascontiguousarray(coef.T * (idf * weight)[:, np.newaxis], dtype=np.float64)
        self.idf_squared = idf * idf
        #: ``char_wb`` only: each word seen → the columns of its n-grams (emptied when full).
        self._word_columns: dict[str, list[int]] = {}

    def columns(self, text: str) -> list[int]:
        """The column of each of the text's terms that the vocabulary knows, repeats included."""
        lookup = self.vocabulary.get
        if not isinstance(self.analyze, WordGrams):
            return [j for j in map(lookup, self.analyze(text)) if j is not None]
        grams, cache, columns = self.analyze.grams, self._word_columns, []
        for word in self.analyze.words(text):
            known = cache.get(word)
            if known is None:
                known = [j for j in map(lookup, grams(word)) if j is not None]
                if len(word) <= CACHED_WORD_LENGTH:  # a long word would cost memory a client chooses
                    if len(cache) >= WORD_CACHE_SIZE:
                        cache.clear()
                    cache[word] = known
            columns.extend(known)
        return columns

    def _terms(self, texts: Sequence[str]) -> tuple[list[int], list[int], list[int], list[int]]:
        """Columns and counts of every text's known terms, with where each text begins and which texts have any."""
        indices: list[int] = []
        counts: list[int] = []
        starts: list[int] = []  # where each text with a known term begins in ``indices``
        known: list[int] = []  # which texts have a known term; the others get nothing from this block
        for row, text in enumerate(texts):
            terms = Counter(self.columns(text))
            if terms:
                starts.append(len(indices))
                known.append(row)
                indices.extend(terms)
                counts.extend(terms.values())
        return indices, counts, starts, known

    def _tf(self, counts: list[int]) -> np.ndarray:
        w = np.array(counts, dtype=np.float64)
        if self.sublinear:
            np.log(w, out=w)
            w += 1.0
        return w

    def add_scores(self, texts: Sequence[str], scores: np.ndarray) -> None:
        """Add this block's part of each text's scores: each row by the same operations, whatever the batch."""
        indices, counts, starts, known = self._terms(texts)
        if not indices:
            return
        columns = np.array(indices, dtype=np.intp)
        term_scores = self.term_scores[columns]
        squares = self.idf_squared[columns]
        if max(counts) > 1:  # otherwise every w is exactly 1
            w = self._tf(counts)
            term_scores *= w[:, np.newaxis]
            squares *= w * w
        summed = np.add.reduceat(term_scores, starts, axis=0)
        if self.l2:
            summed /= np.sqrt(np.add.reduceat(squares, starts))[:, np.newaxis]
        scores[known] += summed

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """This block's TF-IDF rows, as ``TfidfVectorizer.transform`` (times the union's weight) gives them."""
        indices, counts, starts, known = self._terms(texts)
        x = self._tf(counts) * self.idf[np.array(indices, dtype=np.intp)]
        bounds = [*starts, len(indices)]
        if self.l2 and indices:
            x /= np.repeat(np.sqrt(np.add.reduceat(x * x, starts)), np.diff(bounds))
        x *= self.weight
        indptr = np.zeros(len(texts) + 1, dtype=np.intp)
        indptr[np.array(known, dtype=np.intp) + 1] = np.diff(bounds)
        return sparse.csr_matrix((x, indices, np.cumsum(indptr)), shape=(len(texts), len(self.idf)))


class CompiledPredictor:
    """The scores of every block, plus the intercept, through the classifier's link."""

    kind = "compiled"

    def __init__(self, pipeline: Pipeline, blocks: list[Block], intercept: np.ndarray, binary: bool) -> None:
        self.pipeline = pipeline
        self._blocks = blocks
        self._outputs = len(intercept)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._binary = binary

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Each row is computed by the same operations in the same order whatever else is in
        the batch, so a text gets bit-identical probabilities alone or among others."""
        scores = np.zeros((len(texts), self._outputs))
        for block in self._blocks:
            block.add_scores(texts, scores)
        scores += self._intercept
        if self._binary:
            positive = expit(scores[:, 0])  # as scikit-learn: no overflow for extreme scores
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([block.features(texts) for block in self._blocks], format="csr")


def word_analyzer(vectorizer: TfidfVectorizer) -> Analyzer:
    """The vectorizer's analyzer; for plain word n-grams, the same terms built with fewer steps.

    scikit-learn's word analyzer goes through a chain of calls and a Python loop per n-gram;
    for plain configurations (a token pattern, stop words or none, lower-casing or not) the
    same list comes from ``findall``, a filter and ``zip``.
    """
    analyze = vectorizer.build_analyzer()
    plain = (
        vectorizer.analyzer == "word"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.strip_accents is None
        and vectorizer.token_pattern is not None
        and vectorizer.ngram_range[0] >= 1
    )
    if not plain:  # (a pattern with two groups never gets here: build_analyzer refuses it)
        return analyze
    find = re.compile(vectorizer.token_pattern).findall
    stop = vectorizer.get_stop_words() or frozenset()
    lower = bool(vectorizer.lowercase)
    shortest, longest = vectorizer.ngram_range

    def terms(text: str) -> list[str]:
        if lower:
            text = text.lower()
        tokens = [w for w in find(text) if w not in stop] if stop else find(text)
        if longest == 1:
            return tokens
        grams = list(tokens) if shortest == 1 else []
        for n in range(max(shortest, 2), longest + 1):
            grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
        return grams

    return terms


def char_analyzer(vectorizer: TfidfVectorizer) -> Analyzer:
    """The vectorizer's analyzer; for ``char`` and ``char_wb`` n-grams, the same list built faster.

    ``char_wb``: see :class:`WordGrams`. ``char`` slices the text, runs of whitespace made one
    space, with a comprehension per ``n`` rather than scikit-learn's loop per n-gram.
    """
    analyze = vectorizer.build_analyzer()
    plain = (
        vectorizer.analyzer in ("char", "char_wb")
        and vectorizer.preprocessor is None
        and vectorizer.strip_accents is None
        and vectorizer.ngram_range[0] >= 1
    )
    if not plain:
        return analyze
    lower = bool(vectorizer.lowercase)
    shortest, longest = vectorizer.ngram_range

    if vectorizer.analyzer == "char":

        def char_terms(text: str) -> list[str]:
            if lower:
                text = text.lower()
            text = _WHITE_SPACES.sub(" ", text)
            size = len(text)
            grams = list(text) if shortest == 1 else []
            for n in range(max(shortest, 2), min(longest, size) + 1):
                grams.extend([text[i : i + n] for i in range(size - n + 1)])
            return grams

        return char_terms

    return WordGrams(lower, shortest, longest)


class WordGrams:
    """``char_wb``'s n-grams, word by word: each whitespace-separated word, padded with one space
    on each side, gives its n-grams, a word shorter than ``n`` counting once as a whole.

    The n-grams of a word depend on the word alone, so a :class:`Block` looks each word's up
    once and keeps the columns they map to: most words of a text were seen before.
    """

    def __init__(self, lower: bool, shortest: int, longest: int) -> None:
        self.lower, self.shortest, self.longest = lower, shortest, longest

    def words(self, text: str) -> list[str]:
        return (text.lower() if self.lower else text).split()  # str.split and re's \s agree on whitespace

    def grams(self, word: str) -> list[str]:
        padded = f" {word} "
        size = len(padded)
        grams: list[str] = []
        for n in range(self.shortest, min(self.longest + 1, size)):
            grams.extend([padded[i : i + n] for i in range(size - n + 1)])  # slices, not a loop per n-gram
        if size <= self.longest:  # as long as n or shorter: the padded word once, whatever n
            grams.append(padded)
        return grams

    def __call__(self, text: str) -> list[str]:
        return [gram for word in self.words(text) for gram in self.grams(word)]


def fast_analyzer(vectorizer: TfidfVectorizer) -> Analyzer:
    """The fast equivalent of the vectorizer's analyzer for its kind (scikit-learn's own otherwise)."""
    return word_analyzer(vectorizer) if vectorizer.analyzer == "word" else char_analyzer(vectorizer)


def vectorizers(first: Any) -> list[tuple[TfidfVectorizer, float]]:
    """The TF-IDF vectorizers of a pipeline's first step with each one's weight, in column order."""
    if type(first) is TfidfVectorizer:
        return [(first, 1.0)]
    if type(first) is not FeatureUnion:
        raise Unsupported(
            f"expected a TfidfVectorizer or a FeatureUnion of them first, found {type(first).__name__}"
        )
    weights = first.transformer_weights or {}
    found = []
    for name, transformer in first.transformer_list:
        if type(transformer) is not TfidfVectorizer:
            raise Unsupported(f"the union's {name!r} is {type(transformer).__name__}, not a TfidfVectorizer")
        found.append((transformer, float(weights.get(name, 1.0))))
    if not found:
        raise Unsupported("the union has no vectorizer")
    return found


def _check(vectorizer: TfidfVectorizer) -> None:
    if vectorizer.binary:
        raise Unsupported("binary term counts are not compiled")
    if vectorizer.norm not in ("l2", None):
        raise Unsupported(f"norm {vectorizer.norm!r} is not compiled")
    if np.dtype(vectorizer.dtype) != np.float64:
        raise Unsupported(f"dtype {vectorizer.dtype} would round differently from float64")
    if vectorizer.input != "content":
        raise Unsupported(f"input {vectorizer.input!r}: only texts are compiled")


def compile_pipeline(pipeline: Pipeline) -> CompiledPredictor:
    """Compile a fitted pipeline, or raise :class:`Unsupported` naming what stands in the way."""
    steps = [step for _, step in getattr(pipeline, "steps", [])]
    if len(steps) != 2 or type(steps[1]) is not LogisticRegression:
        raise Unsupported(
            f"expected vectorizers → LogisticRegression, found {[type(s).__name__ for s in steps]}"
        )
    first, classifier = steps
    found = vectorizers(first)
    for vectorizer, _ in found:
        _check(vectorizer)
    if getattr(classifier, "multi_class", "auto") not in ("auto", "multinomial", "deprecated"):
        raise Unsupported(f"multi_class {classifier.multi_class!r} is not compiled")
    classes = len(classifier.classes_)
    terms = sum(len(vectorizer.vocabulary_) for vectorizer, _ in found)
    if classifier.coef_.shape != (1 if classes == 2 else classes, terms):
        raise Unsupported(f"coefficients of shape {classifier.coef_.shape} do not match the vocabulary")
    blocks, start = [], 0
    for vectorizer, weight in found:
        end = start + len(vectorizer.vocabulary_)
        blocks.append(Block(vectorizer, classifier.coef_[:, start:end], weight))
        start = end
    return CompiledPredictor(pipeline, blocks, classifier.intercept_, binary=classes == 2)


def predictor_for(pipeline: Pipeline) -> Predictor:
    """The compiled predictor when it reproduces the pipeline, else the pipeline, logged."""
    try:
        return compile_pipeline(pipeline)
    except Unsupported as exc:
        log.warning("predicting with scikit-learn, not compiled: %s", exc)
        return SklearnPredictor(pipeline)

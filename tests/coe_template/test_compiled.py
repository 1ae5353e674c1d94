"""The compiled predictor gives scikit-learn's probabilities, or refuses and says why."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline

from coe_template.args import parse_args
from coe_template.compiled import (
    SklearnPredictor,
    Unsupported,
    compile_pipeline,
    predictor_for,
    word_analyzer,
)
from coe_template.data import clean_text
from coe_template.train import build_pipeline

#: Every kind of configuration ``coe-template train`` accepts (see TrainingArgsSchema).
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "unigrams": {"ngram_max": 1},
    "trigrams, no stop words": {"ngram_max": 3, "stop_words": False},
    "raw counts": {"sublinear_tf": False},
    "pruned vocabulary": {"min_df": 2, "max_df": 0.5},
    "unweighted classes, weak C": {"class_weight": None, "C": 0.01},
    "character n-grams": {"analyzer": "char_wb", "ngram_max": 5},
    "character unigrams": {"analyzer": "char_wb", "ngram_max": 1, "sublinear_tf": False},
}


class Tolerance(TypedDict):
    rtol: float
    atol: float


EXACT: Tolerance = {"rtol": 0, "atol": 1e-9}


def fitted(bundled_dataset, args: dict, tags: int = 4) -> Pipeline:
    keep = sorted(set(bundled_dataset.tags))[:tags]
    rows = [(t, y) for t, y in zip(bundled_dataset.texts, bundled_dataset.tags, strict=True) if y in keep]
    pipeline = build_pipeline(parse_args(args))
    return pipeline.fit([clean_text(t) for t, _ in rows], [y for _, y in rows])


@pytest.fixture(scope="module", params=[*CONFIGURATIONS, "two tags"])
def pipeline(request, bundled_dataset) -> Pipeline:
    if request.param == "two tags":
        return fitted(bundled_dataset, {}, tags=2)  # binary: a logistic, not a softmax
    return fitted(bundled_dataset, CONFIGURATIONS[request.param])


@pytest.fixture(scope="module")
def vocabulary(bundled_dataset) -> list[str]:
    return sorted({word for text in bundled_dataset.texts for word in clean_text(text).split()})


def known_texts(vocabulary: list[str]) -> st.SearchStrategy[str]:
    """Texts made of the model's words, repeated and mixed with noise: every term path is taken."""
    words = st.one_of(st.sampled_from(vocabulary), st.text(min_size=1, max_size=12))
    return st.lists(words, max_size=60).map(" ".join)


def test_the_pipeline_compiles(pipeline):
    assert compile_pipeline(pipeline).kind == "compiled"


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_terms_are_scikit_learns(pipeline, vocabulary, data):
    text = data.draw(st.one_of(st.text(max_size=300), known_texts(vocabulary)))
    vectorizer = pipeline[0]
    assert word_analyzer(vectorizer)(text) == vectorizer.build_analyzer()(text)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_single_texts_match_scikit_learn(pipeline, vocabulary, data):
    text = data.draw(st.one_of(st.text(max_size=300), known_texts(vocabulary)))
    compiled = compile_pipeline(pipeline)
    np.testing.assert_allclose(compiled.predict_proba([text]), pipeline.predict_proba([text]), **EXACT)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_batches_match_scikit_learn(pipeline, vocabulary, data):
    texts = data.draw(st.lists(st.one_of(st.text(max_size=200), known_texts(vocabulary)), min_size=2, max_size=40))
    compiled = compile_pipeline(pipeline)
    together = compiled.predict_proba(texts)
    np.testing.assert_allclose(together, pipeline.predict_proba(texts), **EXACT)
    alone = np.vstack([compiled.predict_proba([text]) for text in texts])
    np.testing.assert_array_equal(together, alone)  # bit for bit: batch and real time agree


@pytest.mark.parametrize("text", [
    "",  # nothing at all
    "zzzz qqqq xxxx",  # no known term: the intercepts alone decide
    "Détection d'objets 画像認識 — сегментация 🚀",  # non-ASCII
    "images " * 20_000 + "kubernetes deployment monitoring " * 5_000,  # very long, heavy repeats
])
def test_edge_texts_match_scikit_learn(pipeline, text):
    compiled = compile_pipeline(pipeline)
    for batch in ([text], [text, "object detection in images", text]):
        np.testing.assert_allclose(compiled.predict_proba(batch), pipeline.predict_proba(batch), **EXACT)


def test_a_batch_of_texts_without_known_terms_is_all_intercept(bundled_dataset):
    pipeline = fitted(bundled_dataset, {})
    texts = ["qqqq", "zzzz", "xxxx"]
    probabilities = compile_pipeline(pipeline).predict_proba(texts)
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(texts), **EXACT)
    assert (probabilities == probabilities[0]).all()


@pytest.mark.parametrize("change, reason", [
    (lambda p: p.steps.__setitem__(1, ("clf", SGDClassifier(loss="log_loss"))), "expected TfidfVectorizer"),
    (lambda p: p.steps[0][1].set_params(binary=True), "binary term counts"),
    (lambda p: p.steps[0][1].set_params(norm="l1"), "norm 'l1'"),
    (lambda p: p.steps[0][1].set_params(dtype=np.float32), "dtype"),
])
def test_what_cannot_be_reproduced_is_refused(bundled_dataset, change, reason):
    pipeline = build_pipeline(parse_args({}))
    change(pipeline)
    pipeline.fit([clean_text(t) for t in bundled_dataset.texts], bundled_dataset.tags)
    with pytest.raises(Unsupported, match=reason):
        compile_pipeline(pipeline)


def test_refused_pipelines_fall_back_to_scikit_learn_and_say_so(bundled_dataset, caplog):
    pipeline = Pipeline([("tfidf", TfidfVectorizer(norm="l1")), ("clf", LogisticRegression())])
    pipeline.fit(bundled_dataset.texts, bundled_dataset.tags)
    with caplog.at_level(logging.WARNING, logger="coe_template.compiled"):
        predictor = predictor_for(pipeline)
    assert isinstance(predictor, SklearnPredictor)
    assert "predicting with scikit-learn, not compiled: norm 'l1'" in caplog.text
    texts = ["object detection", "sentiment of tweets"]
    np.testing.assert_array_equal(predictor.predict_proba(texts), pipeline.predict_proba(texts))

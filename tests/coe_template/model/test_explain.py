"""Explanations add up: the listed terms, the remainder and the intercept make the model's logit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from coe_template.model.args import parse_args
from coe_template.model.compiled import SklearnPredictor, compile_pipeline
from coe_template.model.data import clean_text
from coe_template.model.explain import TOP_TERMS, CannotExplain, Explanation, explain
from coe_template.model.predict import predict
from coe_template.model.train import build_pipeline
from tests.coe_template.model.test_compiled import TRICKY, UNIONS, fitted
from tests.conftest import examples

SUMS: dict[str, Any] = {"rtol": 0, "atol": 1e-9}


@pytest.fixture(
    scope="module",
    params=[
        "words",
        "words, two tags",
        "words + char_wb",
        "words + char_wb, two tags",
        "weighted words + char",
    ],
)
def pipeline(request, bundled_dataset) -> Pipeline:
    tags = 2 if request.param.endswith("two tags") else 4
    if request.param.startswith("words + char_wb"):
        return fitted(bundled_dataset, UNIONS["words 1-2 + char_wb 2-5"], tags=tags)
    if request.param.startswith("weighted"):
        return fitted(bundled_dataset, UNIONS["weighted: counts without idf or norm + char 1-3"], tags=tags)
    return fitted(bundled_dataset, build_pipeline(parse_args({})), tags=tags)


@pytest.fixture(scope="module")
def vocabulary(bundled_dataset) -> list[str]:
    return sorted({word for text in bundled_dataset.texts for word in clean_text(text).split()})


def explained(pipeline: Pipeline, predictor, texts: list[str]) -> list[Explanation]:
    cleaned = [clean_text(t) for t in texts]
    labels = [str(label) for label in pipeline.classes_]
    return explain(cleaned, predictor.predict_proba(cleaned), labels, predictor)


def vectorizers(pipeline: Pipeline) -> list[TfidfVectorizer]:
    first = pipeline[0]
    return [t for _, t in first.transformer_list] if isinstance(first, FeatureUnion) else [first]


def check(pipeline: Pipeline, texts: list[str], explanations: list[Explanation]) -> None:
    """Everything a reader of an explanation may rely on, computed independently with scikit-learn."""
    cleaned = [clean_text(t) for t in texts]
    probabilities = pipeline.predict_proba(cleaned)
    decisions = pipeline.decision_function(cleaned)
    features = pipeline[:-1].transform(cleaned).toarray()
    coef = pipeline[-1].coef_
    assert len(explanations) == len(texts)
    for text, x, p, decision, why in zip(
        cleaned, features, probabilities, decisions, explanations, strict=True
    ):
        k = int(p.argmax())
        assert why.tag == pipeline.classes_[k]
        if coef.shape[0] == 1:  # two tags: the log-odds of the tag explained against the other
            sign = 1.0 if k == 1 else -1.0
            logit, contributions = sign * decision, sign * x * coef[0]
        else:
            logit, contributions = decision[k], x * coef[k]
        np.testing.assert_allclose(why.logit, logit, **SUMS)
        np.testing.assert_allclose(
            why.intercept + sum(t.weight for t in why.terms) + why.remainder, why.logit, **SUMS
        )
        positive = np.sort(contributions[contributions > 0])[::-1][:TOP_TERMS]
        np.testing.assert_allclose([t.weight for t in why.terms], positive, **SUMS)
        made: dict[str, set[str]] = {}  # analyzer → every term its vectorizers made from the text
        for vectorizer in vectorizers(pipeline):
            made.setdefault(vectorizer.analyzer, set()).update(vectorizer.build_analyzer()(text))
        for term in why.terms:
            assert term.term in made[term.analyzer]
            assert term.weight > 0
            if term.analyzer == "word":
                assert set(term.term.split()) <= set(text.split())
            else:
                assert term.term.strip() in text


@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_explanations_add_up_to_the_logit_with_terms_from_the_text(pipeline, vocabulary, data):
    words = st.one_of(st.sampled_from(vocabulary), st.text(min_size=1, max_size=12), TRICKY)
    texts = data.draw(
        st.lists(st.one_of(st.lists(words, max_size=40).map(" ".join), TRICKY), min_size=1, max_size=6)
    )
    for predictor in (compile_pipeline(pipeline), SklearnPredictor(pipeline)):
        check(pipeline, texts, explained(pipeline, predictor, texts))


def test_the_compiled_and_scikit_learn_explanations_agree(pipeline):
    texts = [
        "Real-time object detection on a Raspberry Pi.",
        "Fine-tuning BERT for sentiment analysis of tweets",
        "Deploying models with Kubernetes and monitoring drift",
        "",
        "zzzz",
    ]
    fast, reference = (
        explained(pipeline, p, texts) for p in (compile_pipeline(pipeline), SklearnPredictor(pipeline))
    )
    for one, other in zip(fast, reference, strict=True):
        assert (one.tag, len(one.terms)) == (other.tag, len(other.terms))
        np.testing.assert_allclose(
            [one.logit, one.intercept, one.remainder], [other.logit, other.intercept, other.remainder], **SUMS
        )
        np.testing.assert_allclose([t.weight for t in one.terms], [t.weight for t in other.terms], **SUMS)


def test_a_text_with_no_known_term_is_its_intercept(pipeline):
    why = explained(pipeline, compile_pipeline(pipeline), ["!!! ???"])[0]  # nothing left once cleaned
    assert why.terms == [] and why.remainder == 0 and why.logit == why.intercept


def test_the_terms_are_the_largest_first_and_at_most_the_top(bundled_dataset):
    pipeline = fitted(bundled_dataset, UNIONS["words 1-2 + char_wb 2-5"])
    text = "Real-time object detection and segmentation of images with convolutional networks"
    why = explained(pipeline, compile_pipeline(pipeline), [text])[0]
    assert len(why.terms) == TOP_TERMS
    assert [t.weight for t in why.terms] == sorted((t.weight for t in why.terms), reverse=True)
    assert {t.analyzer for t in why.terms} <= {"word", "char_wb"}
    assert why.remainder != 0  # many more terms than ten


def test_a_prediction_made_other_by_the_threshold_explains_the_tag_the_model_leaned_to(artifacts):
    text = "Real-time object detection on a Raspberry Pi."
    [sure] = predict([text], artifacts, explained=True)
    [unsure] = predict([text], replace(artifacts, threshold=1.0), explained=True)
    assert sure["predicted_tag"] == "computer-vision" and unsure["predicted_tag"] == "other"
    assert unsure["explanation"] == sure["explanation"]
    assert unsure["explanation"].tag == "computer-vision"


def test_predictions_are_explained_only_when_asked(artifacts):
    texts = ["Transfer learning with transformers for text classification.", "qqqq"]
    plain, why = predict(texts, artifacts), predict(texts, artifacts, explained=True)
    assert all("explanation" not in p for p in plain)
    assert [{k: v for k, v in p.items() if k != "explanation"} for p in why] == plain
    check(artifacts.pipeline, texts, [p["explanation"] for p in why])


def test_a_pipeline_served_by_scikit_learn_is_explained_through_its_transform(bundled_dataset):
    pipeline = fitted(
        bundled_dataset, Pipeline([("tfidf", TfidfVectorizer(norm="l1")), ("clf", LogisticRegression())])
    )
    texts = ["object detection in images", "sentiment of tweets"]
    check(pipeline, texts, explained(pipeline, SklearnPredictor(pipeline), texts))


@pytest.mark.parametrize(
    "steps, reason",
    [
        ([("tfidf", TfidfVectorizer()), ("nb", MultinomialNB())], "is not linear in its features"),
        (
            [("tfidf", TfidfVectorizer()), ("same", FunctionTransformer()), ("clf", LogisticRegression())],
            "does not name its features",
        ),
    ],
)
def test_a_model_that_cannot_be_explained_says_so(bundled_dataset, steps, reason):
    pipeline = fitted(bundled_dataset, Pipeline(steps))
    with pytest.raises(CannotExplain) as refused:
        explained(pipeline, SklearnPredictor(pipeline), ["object detection"])
    assert str(refused.value) == f"this version's model {reason}: it cannot be explained"

"""The compiled predictor gives scikit-learn's probabilities, or refuses and says why."""

from __future__ import annotations

import logging
import pickle
from typing import Any, TypedDict

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from coe_template.model import compiled
from coe_template.model.args import parse_args
from coe_template.model.compiled import (
    SklearnPredictor,
    Unsupported,
    char_analyzer,
    compile_pipeline,
    fast_analyzer,
    predictor_for,
    word_analyzer,
)
from coe_template.model.data import clean_text
from coe_template.model.train import build_pipeline
from tests.conftest import examples

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


def words(**params) -> TfidfVectorizer:
    return TfidfVectorizer(**{"lowercase": False, "sublinear_tf": True, "dtype": np.float64, **params})


#: Word and character n-grams side by side in a FeatureUnion, each with its own settings.
UNIONS = {
    "words 1-2 + char_wb 2-5": FeatureUnion(
        [
            ("words", words(ngram_range=(1, 2), stop_words="english")),
            ("chars", words(analyzer="char_wb", ngram_range=(2, 5))),
        ]
    ),
    "weighted: counts without idf or norm + char 1-3": FeatureUnion(
        [
            ("words", words(use_idf=False, norm=None, sublinear_tf=False)),
            ("chars", words(analyzer="char", ngram_range=(1, 3), norm=None)),
        ],
        transformer_weights={"words": 0.5, "chars": 2.0},
    ),
    "lower-casing, n-grams from 2 or 3": FeatureUnion(
        [
            ("words", words(lowercase=True, ngram_range=(2, 3), min_df=2)),
            ("chars", words(lowercase=True, analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=False)),
            ("more chars", words(lowercase=True, analyzer="char", ngram_range=(4, 4), use_idf=False)),
        ],
        transformer_weights={"chars": 3.0},
    ),
}
#: The old shape's branches no ``train`` argument reaches: no idf, no norm.
SINGLE = {"words without idf or norm": words(use_idf=False, norm=None, ngram_range=(1, 2))}
EXACT: Tolerance = {"rtol": 0, "atol": 1e-9}
#: Every tenth row of the dataset (every tag among them): what a refused or fallback pipeline is fitted on,
#: since what it is refused for is its shape, not its data, and fitting on every row took seconds each.
FEW = slice(None, None, 10)


#: Pickled fitted pipelines by what they were fitted from: see fitted().
_FITS: dict[str, bytes] = {}


def fitted(bundled_dataset, first, tags: int = 4, clean=clean_text) -> Pipeline:
    """``first`` (a pipeline, or the features before a logistic regression) fitted on the first ``tags``
    of the dataset's tags: a new copy each time (tests change what they are given), each fit made once
    per process (``make mutate`` runs these tests again for every mutant, in forks of one process)."""
    pipeline = clone(
        first
        if isinstance(first, Pipeline)
        else Pipeline([("features", first), ("clf", LogisticRegression())])
    )
    key = joblib.hash((pipeline, bundled_dataset.texts, bundled_dataset.tags, tags, clean))
    if key not in _FITS:
        keep = sorted(set(bundled_dataset.tags))[:tags]
        rows = [(t, y) for t, y in zip(bundled_dataset.texts, bundled_dataset.tags, strict=True) if y in keep]
        _FITS[key] = pickle.dumps(pipeline.fit([clean(t) for t, _ in rows], [y for _, y in rows]))
    return pickle.loads(_FITS[key])


@pytest.fixture(scope="module", params=[*CONFIGURATIONS, "two tags", *UNIONS, "union, two tags", *SINGLE])
def pipeline(request, bundled_dataset) -> Pipeline:
    if request.param == "two tags":
        return fitted(
            bundled_dataset, build_pipeline(parse_args({})), tags=2
        )  # binary: a logistic, not a softmax
    if request.param == "union, two tags":
        return fitted(bundled_dataset, UNIONS["words 1-2 + char_wb 2-5"], tags=2)
    if request.param in UNIONS:
        lower = request.param.startswith("lower")  # these lower-case themselves: given the raw texts
        return fitted(bundled_dataset, UNIONS[request.param], clean=str if lower else clean_text)
    if request.param in SINGLE:
        return fitted(bundled_dataset, SINGLE[request.param])
    return fitted(bundled_dataset, build_pipeline(parse_args(CONFIGURATIONS[request.param])))


@pytest.fixture(scope="module")
def predictor(pipeline) -> compiled.CompiledPredictor:
    """``pipeline`` compiled once for the property tests (compiling costs a hundred times a prediction):
    deterministic, it is what each example compiled afresh would be; its char_wb word cache, carried
    from example to example, meets both words it has and words it has not."""
    return compile_pipeline(pipeline)


@pytest.fixture(scope="module")
def vocabulary(bundled_dataset) -> list[str]:
    return sorted({word for text in bundled_dataset.texts for word in clean_text(text).split()})


#: Whitespace of every kind (str.isspace, re's \s), NUL, accents, case and a character that lower-cases to two.
TRICKY = st.text(
    alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\x00aAbé É1_-.İß🚀"), max_size=40
)


def known_texts(vocabulary: list[str]) -> st.SearchStrategy[str]:
    """Texts made of the model's words, repeated and mixed with noise: every term path is taken."""
    words = st.one_of(st.sampled_from(vocabulary), st.text(min_size=1, max_size=12), TRICKY)
    return st.lists(words, max_size=60).map(" ".join)


def any_text(vocabulary: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=300), TRICKY, known_texts(vocabulary))


def analyzers(pipeline: Pipeline) -> list[TfidfVectorizer]:
    first = pipeline[0]
    return [t for _, t in first.transformer_list] if isinstance(first, FeatureUnion) else [first]


def test_the_pipeline_compiles(pipeline):
    assert compile_pipeline(pipeline).kind == "compiled"


#: Analyzer settings the fast analyzers take on, each proven equal to scikit-learn's below.
ANALYZERS = [
    {"analyzer": "word"},
    {"analyzer": "word", "ngram_range": (1, 3), "stop_words": "english", "lowercase": False},
    {"analyzer": "word", "ngram_range": (2, 2)},
    {"analyzer": "word", "ngram_range": (3, 4), "stop_words": ["a", "the"]},
    {"analyzer": "word", "token_pattern": r"\w+", "ngram_range": (1, 2)},
    {"analyzer": "char_wb", "ngram_range": (2, 5)},
    {"analyzer": "char_wb", "ngram_range": (1, 1), "lowercase": False},
    {"analyzer": "char_wb", "ngram_range": (4, 6)},
    {"analyzer": "char_wb", "ngram_range": (3, 3)},
    {"analyzer": "char", "ngram_range": (1, 3)},
    {"analyzer": "char", "ngram_range": (2, 5), "lowercase": False},
    {"analyzer": "char", "ngram_range": (1, 1)},
    {"analyzer": "char", "ngram_range": (3, 4)},
]


@pytest.mark.parametrize("params", ANALYZERS, ids=str)
@settings(max_examples=examples(200), deadline=None)
@given(text=st.one_of(st.text(max_size=200), TRICKY, st.lists(TRICKY, max_size=8).map(" ".join)))
def test_the_fast_analyzers_give_scikit_learns_terms_in_order(params, text):
    vectorizer = TfidfVectorizer(**params)
    analyze = fast_analyzer(vectorizer)
    assert analyze.__module__ == "coe_template.model.compiled"  # not scikit-learn's own, silently
    assert analyze(text) == vectorizer.build_analyzer()(text)
    assert analyze(text) == vectorizer.build_analyzer()(text)  # char_wb's second call: from its word cache


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "word", "strip_accents": "unicode"},
        {"analyzer": "word", "tokenizer": str.split, "token_pattern": None},
        {"analyzer": "word", "preprocessor": str.upper},
        {"analyzer": "char_wb", "strip_accents": "ascii"},
        {"analyzer": "char", "preprocessor": str.upper},
        {"analyzer": str.split},
        {"analyzer": "word", "ngram_range": (0, 2)},  # n-grams of no word: scikit-learn's own oddity
        {"analyzer": "char_wb", "ngram_range": (0, 2)},
        {"analyzer": "char", "ngram_range": (0, 2)},
    ],
    ids=str,
)
def test_what_the_fast_analyzers_do_not_cover_is_scikit_learns_own(params):
    vectorizer = TfidfVectorizer(**params)
    analyze = word_analyzer(vectorizer) if vectorizer.analyzer == "word" else char_analyzer(vectorizer)
    assert analyze.__module__ != "coe_template.model.compiled"
    assert analyze("Ça Marche à l'École") == vectorizer.build_analyzer()("Ça Marche à l'École")


def test_the_char_wb_word_cache_stays_bounded_and_right(bundled_dataset, monkeypatch):
    monkeypatch.setattr(compiled, "WORD_CACHE_SIZE", 3)
    pipeline = fitted(bundled_dataset, build_pipeline(parse_args(CONFIGURATIONS["character n-grams"])))
    predictor = compile_pipeline(pipeline)
    texts = ["object detection in images", "detection of objects", "sentiment of tweets", "object detection"]
    for _ in range(3):  # words met again, from the cache, and the cache emptied and filled again
        for text in texts:
            np.testing.assert_allclose(
                predictor.predict_proba([text]), pipeline.predict_proba([text]), **EXACT
            )
            cached = predictor._blocks[0]._word_columns
            assert 0 < len(cached) <= 3
            assert set(cached) <= set(" ".join(texts).split())


@settings(max_examples=examples(120), deadline=None)
@given(data=st.data())
def test_the_terms_are_scikit_learns(pipeline, vocabulary, data):
    text = data.draw(any_text(vocabulary))
    for vectorizer in analyzers(pipeline):
        assert fast_analyzer(vectorizer)(text) == vectorizer.build_analyzer()(text)


@settings(max_examples=examples(120), deadline=None)
@given(data=st.data())
def test_single_texts_match_scikit_learn(pipeline, predictor, vocabulary, data):
    text = data.draw(any_text(vocabulary))
    np.testing.assert_allclose(predictor.predict_proba([text]), pipeline.predict_proba([text]), **EXACT)


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data())
def test_batches_match_scikit_learn(pipeline, predictor, vocabulary, data):
    texts = data.draw(st.lists(any_text(vocabulary), min_size=2, max_size=40))
    together = predictor.predict_proba(texts)
    np.testing.assert_allclose(together, pipeline.predict_proba(texts), **EXACT)
    alone = np.vstack([predictor.predict_proba([text]) for text in texts])
    np.testing.assert_array_equal(together, alone)  # bit for bit: batch and real time agree


@settings(max_examples=examples(30), deadline=None)
@given(data=st.data())
def test_the_features_are_the_pipelines(pipeline, predictor, vocabulary, data):
    """What the classifier sees, block by block (weights included), as the pipeline's transform gives it."""
    texts = data.draw(st.lists(any_text(vocabulary), min_size=1, max_size=10))
    for each in (predictor, SklearnPredictor(pipeline)):
        features = each.features(texts)
        assert features.format == "csr"  # explanations read each text's row through indptr
        assert features.shape == (len(texts), pipeline[-1].coef_.shape[1])
        np.testing.assert_allclose(
            features.toarray(), pipeline[:-1].transform(texts).toarray(), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize(
    "text",
    [
        "",  # nothing at all
        "\x00",  # NUL
        " \t\n\u3000 ",  # whitespace only
        "zzzz qqqq xxxx",  # no known term: the intercepts alone decide
        "Détection d'objets 画像認識 — сегментация 🚀",  # non-ASCII
        "images " * 20_000 + "kubernetes deployment monitoring " * 5_000,  # very long, heavy repeats
    ],
)
def test_edge_texts_match_scikit_learn(pipeline, predictor, text):
    for batch in ([text], [text, "object detection in images", text]):
        np.testing.assert_allclose(predictor.predict_proba(batch), pipeline.predict_proba(batch), **EXACT)
        np.testing.assert_allclose(
            predictor.features(batch).toarray(), pipeline[:-1].transform(batch).toarray(), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("scale", [1e3, 1e6])
def test_extreme_scores_give_scikit_learns_probabilities(bundled_dataset, scale):
    """Coefficients so large that most probabilities underflow to 0 or round to 1: no NaN, no overflow."""
    for tags in (4, 2):
        pipeline = fitted(bundled_dataset, build_pipeline(parse_args({})), tags=tags)
        pipeline[-1].coef_ *= scale
        texts = ["object detection in images", "kubernetes deployment", "", "sentiment of tweets"]
        probabilities = compile_pipeline(pipeline).predict_proba(texts)
        assert np.isfinite(probabilities).all()
        np.testing.assert_allclose(probabilities, pipeline.predict_proba(texts), **EXACT)


def test_a_batch_of_texts_without_known_terms_is_all_intercept(bundled_dataset):
    for first in (build_pipeline(parse_args({})), UNIONS["words 1-2 + char_wb 2-5"]):
        pipeline = fitted(bundled_dataset, first)
        texts = (
            ["qqqq", "zzzz", "xxxx"]
            if first is not UNIONS["words 1-2 + char_wb 2-5"]
            else ["", "\x00", "   "]
        )
        probabilities = compile_pipeline(pipeline).predict_proba(texts)
        np.testing.assert_allclose(probabilities, pipeline.predict_proba(texts), **EXACT)
        assert (probabilities == probabilities[0]).all()


def union_pipeline(*entries, weights=None) -> Pipeline:
    return Pipeline(
        [
            ("features", FeatureUnion(list(entries), transformer_weights=weights)),
            ("clf", LogisticRegression()),
        ]
    )


@pytest.mark.parametrize(
    "make, reason",
    [
        (
            lambda: Pipeline([("tfidf", TfidfVectorizer()), ("clf", SGDClassifier(loss="log_loss"))]),
            "expected vectorizers → LogisticRegression, found ['TfidfVectorizer', 'SGDClassifier']",
        ),
        (
            lambda: Pipeline([("counts", CountVectorizer()), ("clf", LogisticRegression())]),
            "expected a TfidfVectorizer or a FeatureUnion of them first, found CountVectorizer",
        ),
        (
            lambda: Pipeline(
                [
                    ("tfidf", TfidfVectorizer()),
                    ("scale", FunctionTransformer()),
                    ("clf", LogisticRegression()),
                ]
            ),
            "expected vectorizers → LogisticRegression, found ['TfidfVectorizer', 'FunctionTransformer', 'LogisticRegression']",
        ),
        (
            lambda: Pipeline([("tfidf", TfidfVectorizer(binary=True)), ("clf", LogisticRegression())]),
            "binary term counts are not compiled",
        ),
        (
            lambda: Pipeline([("tfidf", TfidfVectorizer(norm="l1")), ("clf", LogisticRegression())]),
            "norm 'l1' is not compiled",
        ),
        (
            lambda: Pipeline([("tfidf", TfidfVectorizer(dtype=np.float32)), ("clf", LogisticRegression())]),
            "dtype <class 'numpy.float32'> would round differently from float64",
        ),
        (
            lambda: Pipeline([("tfidf", TfidfVectorizer(input="file")), ("clf", LogisticRegression())]),
            "input 'file': only texts are compiled",
        ),
        (
            lambda: union_pipeline(("words", TfidfVectorizer()), ("counts", CountVectorizer())),
            "the union's 'counts' is CountVectorizer, not a TfidfVectorizer",
        ),
        (
            lambda: union_pipeline(
                ("words", TfidfVectorizer()), ("chars", TfidfVectorizer(analyzer="char", binary=True))
            ),
            "binary term counts are not compiled",
        ),
        (
            lambda: union_pipeline(
                ("words", TfidfVectorizer()), ("chars", TfidfVectorizer(analyzer="char", norm="l1"))
            ),
            "norm 'l1' is not compiled",
        ),
        (
            lambda: union_pipeline(("words", TfidfVectorizer()), ("dropped", "drop")),
            "the union's 'dropped' is str, not a TfidfVectorizer",
        ),
    ],
)
def test_what_cannot_be_reproduced_is_refused(bundled_dataset, make, reason):
    pipeline = make()
    if pipeline[0].get_params().get("input") != "file":
        pipeline.fit([clean_text(t) for t in bundled_dataset.texts[FEW]], bundled_dataset.tags[FEW])
    else:  # cannot be fitted on texts; the refusal comes before anything fitted is read
        pipeline[-1].fit(np.eye(4), ["a", "b", "c", "d"])
    with pytest.raises(Unsupported) as refused:
        compile_pipeline(pipeline)
    assert str(refused.value) == reason


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),  # no pipeline at all
        Pipeline([("clf", LogisticRegression())]),  # one step
    ],
)
def test_what_is_not_a_two_step_pipeline_is_refused(model):
    with pytest.raises(Unsupported) as refused:
        compile_pipeline(model)
    found = [] if not isinstance(model, Pipeline) else ["LogisticRegression"]
    assert str(refused.value) == f"expected vectorizers → LogisticRegression, found {found}"


def test_a_union_of_nothing_is_refused(bundled_dataset):
    pipeline = fitted(bundled_dataset, build_pipeline(parse_args({})))
    pipeline.steps[0] = ("features", FeatureUnion([("none", "drop")]))
    pipeline[0].transformer_list.clear()
    with pytest.raises(Unsupported) as refused:
        compile_pipeline(pipeline)
    assert str(refused.value) == "the union has no vectorizer"


def test_one_versus_rest_is_refused(bundled_dataset):
    """A model pickled by a scikit-learn that still had ``multi_class`` (1.9 has none) and fitted one-vs-rest."""
    pipeline = fitted(bundled_dataset, build_pipeline(parse_args({})))
    pipeline[-1].multi_class = "ovr"
    with pytest.raises(Unsupported) as refused:
        compile_pipeline(pipeline)
    assert str(refused.value) == "multi_class 'ovr' is not compiled"


@pytest.mark.parametrize("multi_class", ["auto", "multinomial", "deprecated"])
def test_a_softmax_pickled_with_multi_class_is_compiled(bundled_dataset, multi_class):
    pipeline = fitted(bundled_dataset, build_pipeline(parse_args({})))
    pipeline[-1].multi_class = multi_class  # as older scikit-learns pickled a multinomial model
    texts = ["object detection in images", "sentiment of tweets"]
    np.testing.assert_allclose(
        compile_pipeline(pipeline).predict_proba(texts), pipeline.predict_proba(texts), **EXACT
    )


@pytest.mark.parametrize("shape", ["a column fewer", "one row for four tags"])
def test_coefficients_that_do_not_match_the_vocabulary_are_refused(bundled_dataset, shape):
    pipeline = fitted(bundled_dataset, UNIONS["words 1-2 + char_wb 2-5"])
    classifier = pipeline[-1]
    classifier.coef_ = classifier.coef_[:, :-1] if shape == "a column fewer" else classifier.coef_[:1]
    with pytest.raises(Unsupported) as refused:
        compile_pipeline(pipeline)
    assert str(refused.value) == f"coefficients of shape {classifier.coef_.shape} do not match the vocabulary"


def test_refused_pipelines_fall_back_to_scikit_learn_and_say_so(bundled_dataset, caplog):
    pipeline = Pipeline([("tfidf", TfidfVectorizer(norm="l1")), ("clf", LogisticRegression())])
    pipeline.fit(bundled_dataset.texts[FEW], bundled_dataset.tags[FEW])
    with caplog.at_level(logging.WARNING, logger="coe_template.model.compiled"):
        predictor = predictor_for(pipeline)
    assert isinstance(predictor, SklearnPredictor)
    assert predictor.kind == "scikit-learn"
    assert caplog.messages == ["predicting with scikit-learn, not compiled: norm 'l1' is not compiled"]
    texts = ["object detection", "sentiment of tweets"]
    np.testing.assert_array_equal(predictor.predict_proba(texts), pipeline.predict_proba(texts))


def test_the_fallbacks_features_are_what_its_pipeline_feeds_the_classifier(bundled_dataset):
    """Explanations read them: every step but the classifier, however many there are."""
    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer()), ("scale", MaxAbsScaler()), ("clf", LogisticRegression())]
    ).fit(bundled_dataset.texts[FEW], bundled_dataset.tags[FEW])
    predictor = predictor_for(pipeline)
    assert isinstance(predictor, SklearnPredictor)
    texts = ["object detection in images", "sentiment of tweets"]
    features = predictor.features(texts)
    assert features.format == "csr"
    np.testing.assert_array_equal(features.toarray(), pipeline[:-1].transform(texts).toarray())


def test_compilable_pipelines_are_compiled_without_a_word(bundled_dataset, caplog):
    pipeline = fitted(bundled_dataset, UNIONS["words 1-2 + char_wb 2-5"])
    with caplog.at_level(logging.WARNING, logger="coe_template.model.compiled"):
        assert predictor_for(pipeline).kind == "compiled"
    assert caplog.messages == []


def test_the_char_wb_word_cache_never_keeps_a_long_word(bundled_dataset):
    """A client chooses the words: a long one is scored but not kept, so the cache's size is bounded in bytes."""
    pipeline = fitted(bundled_dataset, build_pipeline(parse_args(CONFIGURATIONS["character n-grams"])))
    predictor = compile_pipeline(pipeline)
    long_word = "detection" * 5  # 45 characters
    short_word = "x" * compiled.CACHED_WORD_LENGTH
    for text in (f"object {long_word}", f"{short_word} {long_word}"):
        np.testing.assert_allclose(predictor.predict_proba([text]), pipeline.predict_proba([text]), **EXACT)
    assert set(predictor._blocks[0]._word_columns) == {"object", short_word}

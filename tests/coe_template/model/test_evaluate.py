"""evaluate on hand-made labels: overall, per class and per slice."""

from __future__ import annotations

import pytest

from coe_template.model.evaluate import SLICES, evaluate

NLP, CV, OPS, OTHER = "natural-language-processing", "computer-vision", "mlops", "other"
LABELS = [CV, OPS, NLP, OTHER]
LONG = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"  # not short

ROWS = [
    # (text, true tag)
    (f"Text classification with transformers {LONG}", NLP),
    (f"Sentence classification with a CNN {LONG}", NLP),  # nlp_cnn
    (f"Convolutional networks for named entity recognition {LONG}", NLP),  # nlp_cnn
    ("Short NLP title", NLP),  # short_text
    (f"Image classification with a CNN {LONG}", CV),  # CNN but not NLP
    ("Object detection", CV),  # short_text
    (f"Serving models in production with docker {LONG}", OPS),
    (f"Forecasting sales from tabular data {LONG}", OTHER),
]
TEXTS = [t for t, _ in ROWS]
TRUTH = [y for _, y in ROWS]


def test_report_has_overall_class_and_slices_blocks():
    report = evaluate(TEXTS, TRUTH, TRUTH, LABELS)
    assert set(report) == {"overall", "class", "slices"}
    assert set(report["class"]) == set(LABELS)
    assert set(report["slices"]) == set(SLICES) == {"short_text", "nlp_cnn"}
    for block in [report["overall"], *report["class"].values(), *report["slices"].values()]:
        assert set(block) == {"precision", "recall", "f1", "num_samples"}


def test_perfect_predictions_score_one_everywhere():
    report = evaluate(TEXTS, TRUTH, TRUTH, LABELS)
    assert report["overall"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "num_samples": len(ROWS)}
    for tag in LABELS:
        assert report["class"][tag]["f1"] == 1.0
    for block in report["slices"].values():
        assert block["f1"] == 1.0


def test_per_class_num_samples_are_the_supports():
    report = evaluate(TEXTS, TRUTH, TRUTH, LABELS)
    assert {tag: block["num_samples"] for tag, block in report["class"].items()} == {
        NLP: 4,
        CV: 2,
        OPS: 1,
        OTHER: 1,
    }


def test_a_label_with_no_rows_has_zero_samples_and_zero_scores():
    report = evaluate(TEXTS[:1], TRUTH[:1], TRUTH[:1], LABELS)
    assert report["class"][OPS] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "num_samples": 0}


def test_mistakes_lower_the_scores_of_the_classes_involved():
    predicted = list(TRUTH)
    predicted[4] = NLP  # a vision project called NLP
    report = evaluate(TEXTS, TRUTH, predicted, LABELS)
    assert report["class"][CV]["recall"] == 0.5
    assert report["class"][CV]["precision"] == 1.0
    assert report["class"][NLP]["precision"] == 0.8
    assert report["class"][NLP]["recall"] == 1.0
    assert report["class"][OPS]["f1"] == 1.0
    assert report["overall"]["f1"] < 1.0
    assert report["overall"]["num_samples"] == len(ROWS)


def test_all_wrong_predictions_score_zero():
    predicted = [OTHER if y != OTHER else OPS for y in TRUTH]
    report = evaluate(TEXTS, TRUTH, predicted, LABELS)
    assert report["overall"]["f1"] == 0.0
    assert report["overall"]["recall"] == 0.0


def test_short_text_slice_selects_texts_of_fewer_than_fifteen_words():
    predicted = list(TRUTH)
    predicted[3] = CV  # a short text, wrong
    report = evaluate(TEXTS, TRUTH, predicted, LABELS)
    short = report["slices"]["short_text"]
    assert short["num_samples"] == 2  # "Short NLP title" and "Object detection"
    assert short["recall"] == 0.5


def test_nlp_cnn_slice_selects_nlp_texts_mentioning_convolutions():
    predicted = list(TRUTH)
    predicted[1] = CV  # an NLP project with a CNN, called vision
    report = evaluate(TEXTS, TRUTH, predicted, LABELS)
    nlp_cnn = report["slices"]["nlp_cnn"]
    # Rows 1 and 2 only: row 4 mentions a CNN but is a vision project.
    assert nlp_cnn["num_samples"] == 2
    assert nlp_cnn["recall"] == 0.5


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("Sentence classification with a CNN and attention over words", True),
        ("Text CNNs for sentiment", True),
        ("Convolution over character embeddings", True),
        ("Convolutional sequence to sequence learning", True),
        ("ConvNets for text", True),
        ("Recurrent networks for text classification with attention", False),
        ("Conversational agents with dialogue state tracking", False),
    ],
)
def test_nlp_cnn_slice_membership(text, member):
    report = evaluate([text], [NLP], [NLP], LABELS)
    assert report["slices"]["nlp_cnn"]["num_samples"] == int(member)


def test_an_empty_slice_has_zero_samples():
    long_texts = [f"Text classification {LONG}", f"Image classification {LONG}"]
    report = evaluate(long_texts, [NLP, CV], [NLP, CV], LABELS)
    for name in ("short_text", "nlp_cnn"):
        assert report["slices"][name] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "num_samples": 0}

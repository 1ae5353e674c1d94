"""train: deterministic, stratified, with a threshold chosen on validation or given by the user."""

from __future__ import annotations

import numpy as np
import pytest

from coe_template.model.args import parse_args
from coe_template.model.data import OTHER_TAG, DatasetError, clean_text, load_dataset
from coe_template.model.train import THRESHOLDS, apply_threshold, choose_threshold, split, train
from tests.coe_template.model.test_data import VOCABULARY, project_rows, write_rows

PROBES = [
    "Sentiment of text with a transformer",
    "Detection of objects in camera video",
    "Serving and monitoring models in production with docker",
    "Forecasting sales and churn from tabular data",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("train-data") / "projects.csv"
    return load_dataset(write_rows(path, project_rows(per_tag=15)))


@pytest.fixture(scope="module")
def model(dataset):
    return train(dataset, parse_args({}))


def probabilities(model, texts=PROBES):
    return model.pipeline.predict_proba([clean_text(t) for t in texts])


def test_same_data_and_seed_give_identical_models(dataset, model):
    again = train(dataset, parse_args({}))
    np.testing.assert_array_equal(probabilities(again), probabilities(model))
    assert again.threshold == model.threshold
    assert again.performance == model.performance


def test_the_model_learns_the_tiny_dataset(model):
    assert model.labels == sorted(VOCABULARY)
    predicted = probabilities(model).argmax(axis=1)
    assert [model.labels[i] for i in predicted] == [
        "natural-language-processing",
        "computer-vision",
        "mlops",
        "other",
    ]


def test_the_run_remembers_its_args_and_dataset(dataset, model):
    assert model.args == parse_args({})
    assert model.dataset == dataset.fingerprint


def test_progress_reports_each_step_in_order(dataset):
    steps: list[str] = []
    train(dataset, parse_args({}), steps.append)
    assert steps == [
        "splitting data",
        "fitting the pipeline",
        "choosing the threshold",
        "evaluating on the test split",
    ]


# --- splits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 1234])
def test_stratified_splits_keep_every_class_in_each_split(dataset, seed):
    args = parse_args({"seed": seed})
    splits = split(dataset, args)
    all_tags = set(dataset.tags)
    for texts, tags in splits:
        assert len(texts) == len(tags)
        assert set(tags) == all_tags
    # The three splits partition the data: nothing lost, nothing shared.
    texts = [t for texts, _ in splits for t in texts]
    assert sorted(texts) == sorted(dataset.texts)
    (train_x, _), (val_x, _), (test_x, _) = splits
    assert len(test_x) == pytest.approx(args.test_size * len(dataset), abs=1)
    assert len(val_x) == pytest.approx(args.val_size * len(dataset), abs=1)


def test_splits_are_fixed_by_the_seed(dataset):
    assert split(dataset, parse_args({"seed": 5})) == split(dataset, parse_args({"seed": 5}))
    assert split(dataset, parse_args({"seed": 5})) != split(dataset, parse_args({"seed": 6}))


def test_test_performance_is_measured_on_the_test_split(dataset, model):
    (_, _), (_, _), (_, test_tags) = split(dataset, model.args)
    assert model.performance["overall"]["num_samples"] == len(test_tags)
    for tag in model.labels:
        assert model.performance["class"][tag]["num_samples"] == test_tags.count(tag)


# --- threshold ------------------------------------------------------------------------------------


def test_threshold_is_chosen_from_the_candidates(model):
    assert isinstance(model.threshold, float)
    assert any(model.threshold == float(t) for t in THRESHOLDS)


@pytest.mark.parametrize("threshold", [0.0, 0.42, 0.77])
def test_an_explicit_threshold_is_honoured(dataset, threshold):
    model = train(dataset, parse_args({"threshold": threshold}))
    assert model.threshold == threshold


def test_an_explicit_threshold_is_used_to_score_the_test_split(dataset):
    """With a threshold of 1 nothing is sure enough: every test row is called ``other``."""
    model = train(dataset, parse_args({"threshold": 1.0}))
    classes = model.performance["class"]
    assert classes[OTHER_TAG]["recall"] == 1.0
    for tag in ("natural-language-processing", "computer-vision", "mlops"):
        assert classes[tag]["recall"] == 0.0
    assert model.performance["overall"]["f1"] < 0.2


def test_choose_threshold_finds_the_cut_between_sure_and_unsure_rows():
    labels = ["a", "b"]
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.10, 0.90], [0.48, 0.52], [0.85, 0.15]])
    truth = ["a", OTHER_TAG, "b", OTHER_TAG, "a"]
    # Any threshold in (0.55, 0.85] is perfect; the lowest candidate among them is 0.6.
    assert choose_threshold(probs, labels, truth) == 0.6


def test_choose_threshold_prefers_the_lowest_of_ties():
    labels = ["a", "b"]
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert choose_threshold(probs, labels, ["a", "b"]) == 0.0


def test_choose_threshold_takes_the_lowest_within_one_standard_error_of_the_best():
    """Best F1 below 1 on many rows: a threshold one row worse is within noise of it, and the lowest such wins."""
    labels = ["a", "b"]
    sure, wrong = [0.9, 0.1], [0.1, 0.9]  # right, and wrong, at every threshold
    probs = np.array([sure] * 30 + [wrong] * 5 + [[0.6, 0.4], [0.7, 0.3]])
    truth = ["a"] * 35 + [OTHER_TAG, "a"]
    # The strict best is 0.65 (the 0.6 row right once it falls back, the 0.7 row while it does not);
    # below it one row of 37 is wrong, well within the noise of 37 rows.
    assert choose_threshold(probs, labels, truth) == 0.0
    # With the 0.6 row's kind forty times over, the lower thresholds are more than noise worse.
    many = np.array([sure] * 30 + [[0.6, 0.4]] * 40)
    assert choose_threshold(many, labels, ["a"] * 30 + [OTHER_TAG] * 40) == 0.65


def test_apply_threshold_maps_low_confidence_rows_to_other():
    labels = ["computer-vision", "mlops", "natural-language-processing"]
    probs = np.array(
        [
            [0.80, 0.10, 0.10],  # sure: kept
            [0.40, 0.35, 0.25],  # unsure: other
            [0.20, 0.20, 0.60],  # exactly on the threshold: kept
            [0.10, 0.59, 0.31],  # just below: other
        ]
    )
    assert apply_threshold(probs, labels, 0.6) == [
        "computer-vision",
        OTHER_TAG,
        "natural-language-processing",
        OTHER_TAG,
    ]
    assert apply_threshold(probs, labels, 0.0) == [
        "computer-vision",
        "computer-vision",
        "natural-language-processing",
        "mlops",
    ]


# --- too little data ------------------------------------------------------------------------------


@pytest.mark.parametrize("per_tag", [1, 2])
def test_too_few_rows_per_class_is_a_clear_dataset_error(tmp_path, per_tag):
    dataset = load_dataset(write_rows(tmp_path / "tiny.csv", project_rows(per_tag=per_tag)))
    with pytest.raises(DatasetError) as info:
        train(dataset, parse_args({}))
    message = str(info.value)
    assert f"cannot make stratified train/validation/test splits of {len(dataset)} rows" in message
    assert "Every tag needs enough examples to appear in each split" in message


def test_one_rare_class_among_plenty_is_a_clear_dataset_error(tmp_path):
    rows = project_rows(per_tag=15, tags=("computer-vision", "mlops")) + project_rows(
        per_tag=1, tags=("natural-language-processing",)
    )
    dataset = load_dataset(write_rows(tmp_path / "rare.csv", rows))
    with pytest.raises(DatasetError, match="Every tag needs enough examples"):
        train(dataset, parse_args({}))

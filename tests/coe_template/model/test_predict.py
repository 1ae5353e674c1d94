"""predict: one prediction per text, in order, with a full probability distribution."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coe_template.artifacts.runs import load_artifacts, save_run
from coe_template.artifacts.stores import DirectoryStore
from coe_template.model.args import parse_args
from coe_template.model.data import ACCEPTED_TAGS, OTHER_TAG, load_dataset
from coe_template.model.predict import predict
from coe_template.model.train import train
from tests.coe_template.model.test_data import project_rows, write_rows

TEXTS = [
    "Detection of objects in camera video",
    "Sentiment of text with a transformer",
    "Serving and monitoring models in production with docker",
    "Forecasting sales and churn from tabular data",
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A run trained on the tiny synthetic dataset, saved and loaded back like the service does."""
    root = tmp_path_factory.mktemp("predict")
    dataset = load_dataset(write_rows(root / "projects.csv", project_rows(per_tag=15)))
    store = DirectoryStore(root / "store")
    run_id, _digests = save_run(train(dataset, parse_args({})), store)
    return load_artifacts(run_id, store)


def test_one_prediction_per_text_in_order(artifacts):
    predictions = predict(TEXTS, artifacts)
    assert [p["input_text"] for p in predictions] == TEXTS
    assert [p["predicted_tag"] for p in predictions] == [
        "computer-vision",
        "natural-language-processing",
        "mlops",
        "other",
    ]
    assert [p["input_text"] for p in predict(TEXTS[::-1], artifacts)] == TEXTS[::-1]


def test_each_prediction_has_a_tag_and_a_full_distribution(artifacts):
    for prediction in predict(TEXTS, artifacts):
        assert set(prediction) == {"input_text", "predicted_tag", "probabilities"}
        assert prediction["predicted_tag"] in ACCEPTED_TAGS
        probabilities = prediction["probabilities"]
        assert set(probabilities) == set(artifacts.labels) == set(ACCEPTED_TAGS)
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0)


def test_the_predicted_tag_is_the_most_probable_one_when_sure(artifacts):
    for prediction in predict(TEXTS, artifacts):
        probabilities = prediction["probabilities"]
        best = max(probabilities, key=probabilities.get)
        if probabilities[best] >= artifacts.threshold:
            assert prediction["predicted_tag"] == best


def test_the_same_text_gets_the_same_prediction_alone_or_in_a_batch(artifacts):
    batch = predict(TEXTS, artifacts)
    for text, in_batch in zip(TEXTS, batch, strict=True):
        assert predict([text], artifacts) == [in_batch]


def test_text_is_cleaned_the_same_way_as_in_training(artifacts):
    plain = predict(["detection of objects in camera video"], artifacts)[0]
    noisy = predict(["DETECTION of objects, in camera-video! https://example.com/x"], artifacts)[0]
    assert noisy["probabilities"] == pytest.approx(plain["probabilities"])
    assert noisy["input_text"].startswith("DETECTION")  # the text is echoed as given


def test_an_empty_list_gives_an_empty_list(artifacts):
    assert predict([], artifacts) == []


def test_a_text_below_the_threshold_becomes_other(artifacts):
    text = TEXTS[0]
    prediction = predict([text], artifacts)[0]
    top = max(prediction["probabilities"].values())
    assert prediction["predicted_tag"] == "computer-vision"

    at_threshold = replace(artifacts, threshold=top)
    assert predict([text], at_threshold)[0]["predicted_tag"] == "computer-vision"

    above = replace(artifacts, threshold=min(1.0, top + 0.01))
    unsure = predict([text], above)[0]
    assert unsure["predicted_tag"] == OTHER_TAG
    # The probabilities are still reported as they are.
    assert unsure["probabilities"] == prediction["probabilities"]


def test_a_text_with_no_known_word_is_other_at_a_meaningful_threshold(artifacts):
    """Gibberish shares no word with the training data: the model cannot be sure of any tag."""
    unsure = replace(artifacts, threshold=0.5)
    prediction = predict(["qwertz zxcvb plugh xyzzy"], unsure)[0]
    assert max(prediction["probabilities"].values()) < 0.5
    assert prediction["predicted_tag"] == OTHER_TAG

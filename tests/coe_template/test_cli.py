"""The ``coe-template`` command, run through click's CliRunner against a temporary store."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from coe_template.args import parse_args
from coe_template.cli import main
from coe_template.data import ACCEPTED_TAGS, load_dataset
from coe_template.store import list_runs, save_run
from coe_template.train import train
from tests.coe_template.test_data import project_rows

SETTINGS_VARIABLES = ("COE_MODEL_STORE", "COE_TRAINING_ARGS", "COE_RUN_ID", "COE_MAX_BODY_BYTES",
                      "COE_VALIDATE_RESPONSES")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """The command reads COE_* variables: make sure the caller's own do not leak in."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def cli(store):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--store", str(store), *args])

    return run


@pytest.fixture
def data(write_csv):
    return write_csv(project_rows(per_tag=15))


@pytest.fixture
def trained(data, store):
    """A run already in the store (made without the CLI, so evaluate/predict are tested on their own)."""
    return save_run(train(load_dataset(data), parse_args({})), store)


def test_train_creates_a_run_and_prints_its_id(cli, data, store):
    result = cli("train", "--data", str(data))
    assert result.exit_code == 0, result.output
    runs = list_runs(store)
    assert len(runs) == 1
    first_line, _, rest = result.stdout.partition("\n")
    assert re.fullmatch(rf"run {runs[0]}: trained on 60 rows, threshold [0-9.]+", first_line)
    summary = json.loads(rest)
    assert summary["run_id"] == runs[0]
    assert summary["test"]["num_samples"] > 0
    assert 0.0 <= summary["test"]["f1"] <= 1.0


def test_train_with_an_args_file(cli, data, store, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"threshold": 0.4}), encoding="utf-8")
    result = cli("train", "--data", str(data), "--args", str(args))
    assert result.exit_code == 0, result.output
    assert "threshold 0.4" in result.stdout


def test_train_with_bad_args_fails_naming_the_field(cli, data, store, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ngram_max": 99}), encoding="utf-8")
    result = cli("train", "--data", str(data), "--args", str(args))
    assert result.exit_code == 1
    assert "ngram_max" in result.stderr
    assert list_runs(store) == []


def test_train_if_missing_does_nothing_the_second_time(cli, data, store):
    first = cli("train", "--data", str(data), "--if-missing")
    assert first.exit_code == 0, first.output
    [run_id] = list_runs(store)

    second = cli("train", "--data", str(data), "--if-missing")
    assert second.exit_code == 0, second.output
    assert list_runs(store) == [run_id]
    assert f"already holds run {run_id}; not training" in second.stdout


def test_train_without_if_missing_adds_a_run(cli, data, store, trained):
    result = cli("train", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert len(list_runs(store)) == 2


def test_train_on_a_missing_file_fails_clearly(cli, store, tmp_path):
    missing = tmp_path / "missing.csv"
    result = cli("train", "--data", str(missing))
    assert result.exit_code != 0
    assert f"data file not found: {missing}" in result.stderr
    assert "Traceback" not in result.output
    assert list_runs(store) == []


def test_train_on_a_dataset_too_small_to_split_fails_clearly(cli, store, write_csv):
    result = cli("train", "--data", str(write_csv(project_rows(per_tag=2))))
    assert result.exit_code != 0
    assert "Every tag needs enough examples" in result.stderr
    assert list_runs(store) == []


def test_evaluate_prints_performance_as_json(cli, trained, write_csv):
    holdout = write_csv(project_rows(per_tag=5), name="holdout.csv")
    result = cli("evaluate", "--data", str(holdout))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["run_id"] == trained
    assert report["data"] == str(holdout)
    performance = report["performance"]
    assert set(performance) == {"overall", "class", "slices"}
    assert performance["overall"]["num_samples"] == 20
    assert set(performance["class"]) == set(ACCEPTED_TAGS)
    assert all(block["num_samples"] == 5 for block in performance["class"].values())
    assert set(performance["slices"]) == {"short_text", "nlp_cnn"}


def test_evaluate_a_named_run(cli, trained, data):
    result = cli("evaluate", "--data", str(data), "--run-id", trained)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == trained


def test_evaluate_on_a_missing_file_fails_clearly(cli, trained, tmp_path):
    result = cli("evaluate", "--data", str(tmp_path / "missing.csv"))
    assert result.exit_code != 0
    assert "data file not found" in result.stderr


def test_predict_prints_predictions_as_json(cli, trained):
    texts = ["Detection of objects in camera video", "Sentiment of text with a transformer"]
    result = cli("predict", *texts)
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)
    assert [p["input_text"] for p in predictions] == texts
    assert [p["predicted_tag"] for p in predictions] == ["computer-vision", "natural-language-processing"]
    for prediction in predictions:
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_predict_with_an_unknown_run_fails_clearly(cli, trained):
    result = cli("predict", "--run-id", "20000101T000000000000Z-000000", "some text")
    assert result.exit_code == 1
    assert "run 20000101T000000000000Z-000000 not found" in result.stderr


def test_predict_on_an_empty_store_says_to_train_first(cli, store):
    result = cli("predict", "Object detection in images")
    assert result.exit_code == 1
    assert "no trained run" in result.stderr
    assert "coe-template train" in result.stderr
    assert "Traceback" not in result.output


def test_evaluate_on_an_empty_store_says_to_train_first(cli, data):
    result = cli("evaluate", "--data", str(data))
    assert result.exit_code == 1
    assert "coe-template train" in result.stderr


@pytest.mark.parametrize("texts", [["   "], [""], ["Object detection", " \t\n "]])
def test_predict_refuses_whitespace_only_text(cli, trained, texts):
    result = cli("predict", *texts)
    assert result.exit_code == 2
    assert "every text must contain a non-whitespace character" in result.stderr
    assert result.stdout == ""


def test_predict_needs_at_least_one_text(cli, trained):
    result = cli("predict")
    assert result.exit_code == 2
    assert "TEXTS" in result.stderr

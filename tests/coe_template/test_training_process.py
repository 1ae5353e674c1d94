"""Training a recorded version: in this process (run_training) and in its own (start_training)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import select

from coe_template.args import parse_args
from coe_template.data import DatasetError
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.schema import Model, ModelVersion
from coe_template.registry.training import run_training, start_training
from coe_template.store import MODEL_FILE, runs_dir
from tests.coe_template.test_data import project_rows
from tests.coe_template.test_registry import NAME, RUN_FILES, registry, store  # noqa: F401  (fixtures)

#: Generous: the training process has to import scikit-learn and friends first.
DEADLINE_SECONDS = 120


@pytest.fixture
def small_csv(write_csv):
    return write_csv(project_rows(per_tag=15), name="small.csv")


@pytest.fixture
def no_tag_csv(write_csv):
    rows = [{"title": r["title"], "description": r["description"]} for r in project_rows(per_tag=15)]
    return write_csv(rows, header=("title", "description"), name="no-tag.csv")


@pytest.fixture
def model(registry):
    registry.ensure_model(NAME)
    return registry


def wait_until(condition, seconds: float = DEADLINE_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def trainer_pid(registry: Registry, number: int) -> int | None:
    """The process the registry has recorded as training a version."""
    with registry.engine.connect() as connection:
        return connection.scalar(
            select(ModelVersion.trainer_pid).join(Model)
            .where(Model.name == NAME, ModelVersion.version == number)
        )


# --- in this process ------------------------------------------------------------------------------


def test_run_training_trains_and_marks_the_version_ready(model, small_csv):
    args = parse_args({"C": 3.0, "seed": 5})
    number = model.create_version(NAME, args)["version"]
    result = run_training(model, NAME, number, small_csv)
    assert result["status"] == "ready"
    version = model.get_version(NAME, number)
    assert version["status"] == "ready"
    assert version["args"] == args.to_dict()
    assert version["dataset"]["rows"] == 60
    assert 0.0 <= version["performance"]["overall"]["f1"] <= 1.0
    assert set(version["artifacts"]) == RUN_FILES
    # The trained version is usable: it loads, and can be promoted.
    assert model.load(NAME, number).arg("C") == 3.0
    model.set_alias(NAME, PRODUCTION, number)
    assert model.get_alias(NAME, PRODUCTION) == number


def test_run_training_on_a_csv_missing_a_column_fails_the_version_and_reraises(model, no_tag_csv):
    number = model.create_version(NAME, parse_args({}))["version"]
    with pytest.raises(DatasetError, match="missing column"):
        run_training(model, NAME, number, no_tag_csv)
    version = model.get_version(NAME, number)
    assert version["status"] == "failed"
    # Every client can read the version: the data file is named, its place on the server is not.
    assert version["error"] == ("DatasetError: the training data (no-tag.csv) is missing column(s) tag; "
                                "found title, description")
    assert version["run_id"] is None
    assert not runs_dir(model.store).exists() or not any(runs_dir(model.store).iterdir())


def test_run_training_on_a_dataset_too_small_to_split_fails_the_version(model, write_csv):
    tiny = write_csv(project_rows(per_tag=2), name="tiny.csv")
    number = model.create_version(NAME, parse_args({}))["version"]
    with pytest.raises(DatasetError):
        run_training(model, NAME, number, tiny)
    version = model.get_version(NAME, number)
    assert version["status"] == "failed"
    assert "Every tag needs enough examples" in version["error"]


def test_an_unexpected_training_error_is_recorded_without_its_message(model, tmp_path):
    """An error nobody planned for can say anything (here, the data's full path): the log has it."""
    too_long = tmp_path / ("x" * 300 + ".csv")
    number = model.create_version(NAME, parse_args({}))["version"]
    with pytest.raises(OSError, match="File name too long"):
        run_training(model, NAME, number, too_long)
    version = model.get_version(NAME, number)
    assert version["status"] == "failed"
    assert version["error"] == "OSError: training failed unexpectedly; the traceback is in the server's log"


# --- in a process of its own ----------------------------------------------------------------------


def test_start_training_trains_in_a_separate_process(model, database_url, small_csv):
    args = parse_args({"seed": 11})
    started = start_training(model, database_url, NAME, args, small_csv)
    number = started["version"]
    assert number == 1
    assert started["status"] == "training"
    pid = trainer_pid(model, number)
    assert pid is not None and pid != os.getpid()

    finished = wait_until(lambda: model.get_version(NAME, number)["status"] != "training")
    assert finished, "training never finished"
    version = model.get_version(NAME, number)
    assert version["status"] == "ready", version["error"]
    assert version["args"] == args.to_dict()
    assert version["dataset"]["rows"] == 60
    assert (runs_dir(model.store) / version["run_id"] / MODEL_FILE).is_file()
    assert model.load(NAME, number).arg("seed") == 11
    assert trainer_pid(model, number) is None
    assert wait_until(lambda: not alive(pid)), "the training process did not exit"


def test_a_killed_training_process_is_reaped_as_failed(model, database_url, small_csv):
    started = start_training(model, database_url, NAME, parse_args({}), small_csv)
    number = started["version"]
    pid = trainer_pid(model, number)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid)), "the training process did not die"

    assert model.reap_dead_trainers() == 1
    version = model.get_version(NAME, number)
    assert version["status"] == "failed"
    assert str(pid) in version["error"]
    assert version["run_id"] is None
    assert model.reap_dead_trainers() == 0

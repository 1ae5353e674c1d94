"""Training jobs: recorded with their version, claimed under a lease, completed only by their holder,
and trained by a runner in a child process of its own.

Leases here are rewound by hand (``expire``) rather than waited out, except where a
real runner is stopped.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from coe_template.artifacts.runs import runs_dir
from coe_template.errors import Busy, Conflict
from coe_template.model.args import parse_args
from coe_template.model.data import bundled_dataset_path, load_dataset
from coe_template.model.train import train
from coe_template.registry import PRODUCTION
from coe_template.registry.schema import TrainingJob, utcnow
from coe_template.registry.training import MAX_ATTEMPTS, TrainingJobs
from coe_template.trainer import TrainingRunner, train_version
from tests.coe_template.model.test_data import project_rows, write_rows
from tests.coe_template.registry.test_registry import NAME, RUN_FILES, registry, store  # noqa: F401  (fixtures)
from tests.servers import worker_pids
from tests.waiting import wait_until

#: What a cancelled version says, word for word (not the package's constant: the text is what users see).
CANCELLED = "cancelled by an administrator before training finished"
#: Generous: the training process has to import scikit-learn and friends first.
DEADLINE_SECONDS = 120


@pytest.fixture
def small_csv(write_csv):
    return write_csv(project_rows(per_tag=15), name="small.csv")


@pytest.fixture
def no_tag_csv(write_csv):
    rows = [{"title": r["title"], "description": r["description"]} for r in project_rows(per_tag=15)]
    return write_csv(rows, header=("title", "description"), name="no-tag.csv")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A real model, trained in well under a second on 60 rows."""
    csv = write_rows(tmp_path_factory.mktemp("training-data") / "projects.csv", project_rows(per_tag=15))
    return train(load_dataset(csv), parse_args({}))


@pytest.fixture
def model(registry):
    registry.ensure_model(NAME)
    return registry


@pytest.fixture
def jobs(model):
    return TrainingJobs(model, lease_seconds=60)


def job_rows(registry) -> list[tuple]:
    with registry.engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(
                    TrainingJob.version_id, TrainingJob.status, TrainingJob.attempts, TrainingJob.lease_owner
                ).order_by(TrainingJob.id)
            )
        ]


def expire(registry) -> None:
    """Every lease runs out now, as if its holder had died."""
    with registry.engine.begin() as connection:
        connection.execute(
            update(TrainingJob)
            .where(TrainingJob.status == "running")
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


# --- training itself, in this process ---------------------------------------------------------------


def test_train_version_trains_with_the_args_given(small_csv):
    kind, trained = train_version({"C": 3.0, "seed": 5}, small_csv)
    assert kind == "ready"
    assert trained.args == parse_args({"C": 3.0, "seed": 5})
    assert trained.dataset["rows"] == 60


def test_a_csv_missing_a_column_is_told_without_the_server_path(no_tag_csv):
    # Every client can read the version: the data file is named, its place on the server is not.
    assert train_version({}, no_tag_csv) == (
        "failed",
        "DatasetError: the training data (no-tag.csv) is missing column(s) tag; found title, description",
    )


def test_a_dataset_too_small_to_split_is_told(write_csv):
    kind, why = train_version({}, write_csv(project_rows(per_tag=2), name="tiny.csv"))
    assert kind == "failed" and "Every tag needs enough examples" in why


def test_an_unexpected_training_error_is_told_without_its_message(tmp_path):
    """An error nobody planned for can say anything (here, the data's full path): the log has it."""
    assert train_version({}, tmp_path / ("x" * 300 + ".csv")) == (
        "failed",
        "OSError: training failed unexpectedly; the traceback is in the server's log",
    )


# --- jobs in the database ----------------------------------------------------------------------------


def test_a_version_and_its_job_are_recorded_together(jobs, model):
    created = jobs.create(NAME, parse_args({"C": 2.0}))
    assert created.status == "training" and created.version == 1
    assert [row[1:] for row in job_rows(model)] == [("pending", 0, None)]
    assert jobs.created.is_set()  # this process's idle runner is woken


def test_the_training_limit_counts_queued_versions_and_refuses_both_records(jobs, model):
    args = parse_args({})
    jobs.create(NAME, args, max_training=2)
    jobs.create(NAME, args, max_training=2)
    with pytest.raises(Busy, match="2 version"):
        jobs.create(NAME, args, max_training=2)
    assert len(job_rows(model)) == 2
    assert [v.version for v in model.list_versions(NAME)[0]] == [1, 2]


def test_a_held_job_is_not_claimed_twice_and_the_oldest_goes_first(jobs):
    for _ in range(2):
        jobs.create(NAME, parse_args({}))
    first, second = jobs.claim("a:1:x"), jobs.claim("b:2:y")
    assert (first.version, first.owner, first.attempts) == (1, "a:1:x", 1)
    assert (second.version, second.owner) == (2, "b:2:y")
    assert jobs.claim("c:3:z") is None


def test_a_stale_trainers_completion_is_refused_and_its_successors_kept(jobs, model, small_model):
    """The lease ran out (its trainer stalled), another runner took the job: the first one's
    result, arriving late, changes nothing and writes no artifact; the holder's is stored."""
    jobs.create(NAME, small_model.args)
    stale = jobs.claim("stale:1:aaaa")
    expire(model)
    holder = jobs.claim("holder:2:bbbb")
    assert holder.attempts == 2
    assert jobs.renew(stale) is False
    assert jobs.complete(stale, small_model) is False
    assert jobs.fail(stale, "too late") is False
    assert model.get_version(NAME, 1).status == "training"
    assert not runs_dir(model.store).exists() or not any(runs_dir(model.store).iterdir())

    assert jobs.renew(holder) is True
    assert jobs.complete(holder, small_model) is True
    version = model.get_version(NAME, 1)
    assert version.status == "ready" and set(version.artifacts) == RUN_FILES
    assert job_rows(model) == [(job_rows(model)[0][0], "done", 2, "holder:2:bbbb")]
    model.set_alias(NAME, PRODUCTION, 1)  # a trained version like any other


def test_a_job_abandoned_twice_fails_its_version_naming_the_last_owner(jobs, model):
    jobs.create(NAME, parse_args({}))  # 1: abandoned twice
    jobs.create(NAME, parse_args({}))  # 2: still to do
    assert jobs.claim("first:1:aaaa").version == 1
    expire(model)
    retry = jobs.claim("second:2:bbbb")
    assert (retry.version, retry.attempts) == (1, MAX_ATTEMPTS)
    expire(model)
    nxt = jobs.claim("third:3:cccc")  # fails version 1 on the way, takes version 2
    assert nxt.version == 2
    failed = model.get_version(NAME, 1)
    assert failed.status == "failed"
    assert failed.error == (
        "training was abandoned 2 times; its last trainer, second:2:bbbb, stopped renewing its lease"
    )
    assert job_rows(model)[0][1:] == ("failed", 2, "second:2:bbbb")
    assert jobs.claim("fourth:4:dddd") is None  # never claimed again


def test_a_job_given_back_is_pending_at_once_its_attempt_not_counted(jobs, model):
    jobs.create(NAME, parse_args({}))
    claim = jobs.claim("stopping:1:aaaa")
    assert jobs.release(claim) is True
    assert job_rows(model)[0][1:] == ("pending", 0, None)
    assert jobs.claim("next:2:bbbb").attempts == 1


def test_a_failed_training_fails_the_version_with_the_message(jobs, model):
    jobs.create(NAME, parse_args({}))
    claim = jobs.claim("a:1:x")
    assert jobs.fail(claim, "DatasetError: the training data (x.csv) is empty") is True
    version = model.get_version(NAME, 1)
    assert (version.status, version.error) == ("failed", "DatasetError: the training data (x.csv) is empty")
    assert job_rows(model)[0][1:3] == ("failed", 1)


# --- a runner, training in a child process -----------------------------------------------------------


def test_a_runner_trains_a_queued_version_in_a_child_process(jobs, model, small_csv):
    args = parse_args({"seed": 11})
    jobs.create(NAME, args)
    outcomes = []
    runner = TrainingRunner(jobs, small_csv, observe=lambda claim, outcome: outcomes.append(outcome))
    claim = runner.run_once()
    assert claim is not None and outcomes == ["done"]
    version = model.get_version(NAME, 1)
    assert version.status == "ready", version.error
    assert version.args == args.to_dict()
    assert version.dataset["rows"] == 60
    assert model.load(NAME, 1).arg("seed") == 11
    assert job_rows(model)[0][1:] == ("done", 1, runner.owner)
    assert runner.run_once() is None


def test_a_runner_records_why_training_failed(jobs, model, no_tag_csv):
    jobs.create(NAME, parse_args({}))
    TrainingRunner(jobs, no_tag_csv).run_once()
    version = model.get_version(NAME, 1)
    assert version.status == "failed"
    assert version.error == (
        "DatasetError: the training data (no-tag.csv) is missing column(s) tag; found title, description"
    )


def test_a_stopping_runner_gives_its_job_back_and_ends_its_child(jobs, model):
    jobs.create(NAME, parse_args({}))
    before = set(worker_pids(os.getpid()))
    runner = TrainingRunner(jobs, bundled_dataset_path(), poll_seconds=0.05)
    runner.start()
    wait_until(
        lambda: job_rows(model)[0][1] == "running" and set(worker_pids(os.getpid())) - before,
        30,
        "the job running, in a child process",
    )
    children = set(worker_pids(os.getpid())) - before
    stopper = threading.Thread(target=runner.stop, args=(0.2,))
    stopper.start()
    stopper.join(timeout=30)
    assert not stopper.is_alive()
    wait_until(
        lambda: not children & set(worker_pids(os.getpid())), 10, "the training process outlived the stop"
    )
    assert job_rows(model)[0][1:] == ("pending", 0, None)
    assert model.get_version(NAME, 1).status == "training"  # for the next runner to train


# --- bounds: a training that never ends, a job given back for ever, a cancel -------------------------


@pytest.fixture
def fifo(tmp_path):
    """Training data whose open() blocks for ever (like a hung network mount): no training can finish."""
    path = tmp_path / "projects.csv"
    os.mkfifo(path)
    return path


def test_a_training_longer_than_its_timeout_is_stopped_and_its_version_failed(jobs, model, fifo):
    jobs.create(NAME, parse_args({}))
    before = set(worker_pids(os.getpid()))
    outcomes = []
    runner = TrainingRunner(
        jobs, fifo, timeout_seconds=1, observe=lambda claim, outcome: outcomes.append(outcome)
    )
    started = time.monotonic()
    assert runner.run_once() is not None
    assert time.monotonic() - started < 30
    version = model.get_version(NAME, 1)
    assert (version.status, version.error) == (
        "failed",
        "training took longer than 1 s (COE_TRAINING_TIMEOUT): stopped",
    )
    assert job_rows(model)[0][1:] == ("failed", 1, runner.owner)
    assert outcomes == ["failed"]
    assert not set(worker_pids(os.getpid())) - before, "the training process outlived its timeout"


def test_a_job_given_back_after_training_longer_than_a_lease_counts_and_ends_on_its_last_try(model):
    """A training longer than its runners live (server workers recycled, deploys) is given back
    unfinished each time: counted, it ends after MAX_ATTEMPTS tries instead of looping for ever."""
    jobs = TrainingJobs(model, lease_seconds=1)
    jobs.create(NAME, parse_args({}))
    first = jobs.claim("first:1:aaaa")
    assert jobs.release(first, ran_seconds=1.5) is True
    assert job_rows(model)[0][1:] == ("pending", 1, None)  # the try counted
    last = jobs.claim("last:2:bbbb")
    assert last.attempts == MAX_ATTEMPTS
    assert jobs.release(last, ran_seconds=2.4) is True
    version = model.get_version(NAME, 1)
    assert (version.status, version.error) == (
        "failed",
        (
            "training was given back unfinished on its last try (2 of 2): its trainer, last:2:bbbb, "
            "was stopped after 2 s (a restart, a deploy or a recycled server worker)"
        ),
    )
    assert job_rows(model)[0][1:] == ("failed", 2, "last:2:bbbb")
    assert jobs.claim("next:3:cccc") is None


def test_a_job_given_back_within_a_lease_is_not_counted(model):
    jobs = TrainingJobs(model, lease_seconds=1)
    jobs.create(NAME, parse_args({}))
    for owner in ("a:1:x", "b:2:y", "c:3:z"):
        assert jobs.release(jobs.claim(owner), ran_seconds=0.9) is True
    assert job_rows(model)[0][1:] == ("pending", 0, None)


def test_a_stopping_runner_that_trained_longer_than_a_lease_counts_its_try(model):
    jobs = TrainingJobs(model, lease_seconds=0.5)
    jobs.create(NAME, parse_args({}))
    runner = TrainingRunner(jobs, bundled_dataset_path(), poll_seconds=0.05)  # seconds to train
    runner.start()
    wait_until(lambda: job_rows(model)[0][1] == "running", 30, "the job running")
    time.sleep(1.0)
    runner.stop(0.1)
    assert job_rows(model)[0][1:] == ("pending", 1, None)
    assert model.get_version(NAME, 1).status == "training"


def test_a_queued_version_cancelled_fails_with_its_job_and_is_never_claimed(jobs, model):
    jobs.create(NAME, parse_args({}))
    cancelled = jobs.cancel(NAME, 1)
    assert (cancelled.status, cancelled.error) == ("failed", CANCELLED)
    assert model.get_version(NAME, 1) == cancelled
    assert job_rows(model)[0][1:] == ("failed", 0, None)
    assert jobs.claim("a:1:x") is None


def test_a_running_version_cancelled_refuses_its_trainers_renewal_and_result(jobs, model, small_model):
    jobs.create(NAME, small_model.args)
    claim = jobs.claim("a:1:x")
    jobs.cancel(NAME, 1)
    assert jobs.renew(claim) is False
    assert jobs.complete(claim, small_model) is False
    assert jobs.fail(claim, "too late") is False
    version = model.get_version(NAME, 1)
    assert (version.status, version.error) == ("failed", CANCELLED)
    assert not runs_dir(model.store).exists() or not any(runs_dir(model.store).iterdir())


@pytest.mark.parametrize("status", ["ready", "failed"])
def test_only_a_training_version_can_be_cancelled(jobs, model, small_model, status):
    jobs.create(NAME, small_model.args)
    claim = jobs.claim("a:1:x")
    if status == "ready":
        jobs.complete(claim, small_model)
    else:
        jobs.fail(claim, "DatasetError: bad")
    with pytest.raises(
        Conflict, match=f"^version 1 of '{NAME}' is {status}, not training: nothing to cancel$"
    ):
        jobs.cancel(NAME, 1)
    assert model.get_version(NAME, 1).status == status


def test_a_runner_whose_version_is_cancelled_ends_its_child_at_its_next_renewal(model):
    jobs = TrainingJobs(model, lease_seconds=1)  # renewed every third of a second
    jobs.create(NAME, parse_args({}))
    before = set(worker_pids(os.getpid()))
    outcomes = []
    runner = TrainingRunner(
        jobs, bundled_dataset_path(), observe=lambda claim, outcome: outcomes.append(outcome)
    )
    worker = threading.Thread(target=runner.run_once)
    worker.start()
    wait_until(
        lambda: job_rows(model)[0][1] == "running" and set(worker_pids(os.getpid())) - before,
        30,
        "the job running, in a child process",
    )
    jobs.cancel(NAME, 1)
    worker.join(timeout=10)
    assert not worker.is_alive(), "the runner kept training a cancelled version"
    assert outcomes == ["dropped"]
    assert not set(worker_pids(os.getpid())) - before
    assert model.get_version(NAME, 1).error == CANCELLED


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_runner_whose_training_data_is_unreadable_claims_nothing(jobs, model, tmp_path, caplog, kind):
    data = tmp_path / "projects.csv"
    if kind == "directory":
        data.mkdir()
    jobs.create(NAME, parse_args({}))
    runner = TrainingRunner(jobs, data, poll_seconds=0.05)
    with caplog.at_level("ERROR", logger="coe_template.trainer"):
        runner.start()
        time.sleep(0.5)
        runner.stop(1)
    assert job_rows(model)[0][1:] == ("pending", 0, None)  # left for a runner that can read its data
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        (
            f"training: COE_TRAINING_DATA ({data}) is not a readable file: this process trains nothing; "
            "queued versions wait for a runner that can read its training data"
        )
    ]


def test_the_training_child_runs_one_blas_and_openmp_thread(jobs, model, small_csv, capfd):
    """The child says what its thread pools hold (threadpoolctl, from inside it): one thread each,
    whatever this machine's cores, so a fit never competes with the serving workers for them."""
    jobs.create(NAME, parse_args({}))
    assert TrainingRunner(jobs, small_csv).run_once() is not None
    said = [line for line in capfd.readouterr().err.splitlines() if "BLAS/OpenMP threads:" in line]
    assert len(said) == 1, said
    pools = said[0].split("BLAS/OpenMP threads: ", 1)[1].split(", ")
    assert any(pool.startswith(("openblas ", "mkl ", "blis ")) for pool in pools), pools
    assert all(pool.endswith(" 1") for pool in pools), pools

"""Training as a leased job, with real processes: workers killed with -9 mid-training, workers
racing over a queue, and a real server training what it is sent.

A dead worker's job is retried once its lease (2 s here) runs out, and a job whose
trainer dies twice fails its version, naming the owner that last held it: nothing stays
``training``. Two workers never train the same version. A server trains in its own
runner, with its ``COE_TRAINING_ARGS`` for what a request leaves out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from coe_template.model.args import parse_args
from coe_template.model.data import bundled_dataset_path
from coe_template.registry.schema import Model, ModelVersion, TrainingJob
from coe_template.registry.training import TrainingJobs
from tests.coe_template.model.test_data import project_rows, write_rows
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.servers import PROJECT_ROOT, free_port, gunicorn, worker_pids
from tests.test_worker import samples, worker
from tests.waiting import wait_until

LEASE = "2"
VERSIONS = f"/models/{MODEL}/versions"


def job(registry, number: int) -> dict:
    """A version's training job as the table holds it, with the version's status and error."""
    with registry.engine.connect() as connection:
        row = connection.execute(
            select(
                TrainingJob.status,
                TrainingJob.attempts,
                TrainingJob.lease_owner,
                ModelVersion.status.label("version_status"),
                ModelVersion.error,
            )
            .join(ModelVersion, ModelVersion.id == TrainingJob.version_id)
            .join(Model)
            .where(Model.name == MODEL, ModelVersion.version == number)
        ).one()
    return dict(row._mapping)


def trainers_of(pid: int) -> list[int]:
    """The training processes (``python -m coe_template.trainer``) a worker has started."""
    found = []
    for child in worker_pids(pid):
        with contextlib.suppress(FileNotFoundError):
            if b"coe_template.trainer" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def alive(pid: int) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def kill_mid_training(registry, number: int, process, attempts: int) -> str:
    """Wait until ``process`` holds the job on its ``attempts``-th try and trains it; kill -9 its group.

    Its training process is in a session of its own (a Ctrl-C is the runner's to handle):
    it must end by itself once its runner is gone. Returns the owner that held the lease.
    """
    wait_until(
        lambda: job(registry, number)["attempts"] == attempts and trainers_of(process.pid),
        60,
        "the worker never started training",
    )
    held = job(registry, number)
    assert held["status"] == "running" and held["lease_owner"].split(":")[1] == str(process.pid), held
    trainers = trainers_of(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    wait_until(
        # Generous: a child killed while still importing scikit-learn on a loaded machine ends only then.
        lambda: not any(alive(pid) for pid in trainers),
        30,
        "a killed worker's training process lived on",
    )
    return held["lease_owner"]


def env_for(database_url: str, store: Path, data: Path, lease: str = LEASE) -> dict[str, str]:
    return {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_TRAINING_DATA": str(data),
        "COE_TRAINING_LEASE_SECONDS": lease,
    }


def test_a_worker_killed_mid_training_is_retried_by_another_and_the_version_ends_ready(
    tmp_path, database_url, trained_model
):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = env_for(database_url, store, bundled_dataset_path())  # seconds to train: time to be killed in
    number = TrainingJobs(registry).create(MODEL, parse_args({"C": 2.5})).version
    try:
        with worker(env, tmp_path / "worker-1.log", "--work", "training") as first:
            dead = kill_mid_training(registry, number, first, attempts=1)
        assert job(registry, number)["version_status"] == "training"  # until its lease runs out
        with worker(env, tmp_path / "worker-2.log", "--work", "training") as second:
            wait_until(lambda: job(registry, number)["version_status"] != "training", 120, "never retried")
        done = job(registry, number)
        assert done["version_status"] == "ready", done
        assert (done["status"], done["attempts"]) == ("done", 2)  # the retry counted
        assert done["lease_owner"] != dead and done["lease_owner"].split(":")[1] == str(second.pid)
        assert registry.get_version(MODEL, number).args["C"] == 2.5
        assert registry.load(MODEL, number).arg("C") == 2.5
        assert "try 2" in (tmp_path / "worker-2.log").read_text()
    finally:
        registry.engine.dispose()


def test_a_version_whose_trainer_dies_twice_fails_naming_the_last_owner(
    tmp_path, database_url, trained_model
):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = env_for(database_url, store, bundled_dataset_path())
    number = TrainingJobs(registry).create(MODEL, parse_args({})).version
    try:
        with worker(env, tmp_path / "worker-1.log", "--work", "training") as first:
            kill_mid_training(registry, number, first, attempts=1)
        with worker(env, tmp_path / "worker-2.log", "--work", "training") as second:
            last = kill_mid_training(registry, number, second, attempts=2)
        with worker(env, tmp_path / "worker-3.log", "--work", "training"):
            wait_until(lambda: job(registry, number)["version_status"] != "training", 60, "never given up")
        failed = job(registry, number)
        assert failed == {
            "status": "failed",
            "attempts": 2,
            "lease_owner": last,
            "version_status": "failed",
            "error": f"training was abandoned 2 times; its last trainer, {last}, stopped renewing its lease",
        }
        assert "training version" not in (tmp_path / "worker-3.log").read_text()  # not tried a third time
    finally:
        registry.engine.dispose()


def test_two_workers_racing_over_a_queue_never_train_the_same_version(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    data = write_rows(tmp_path / "small.csv", project_rows(per_tag=15))  # trains in a moment
    env = env_for(database_url, store, data, lease="10")
    # As an operator queues one: the command records it and returns, printing its number.
    command = subprocess.run(
        [sys.executable, "-m", "coe_template.cli", "train", "--queue", "--model", MODEL],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (command.returncode, command.stdout) == (0, "2\n"), command.stderr
    assert job(registry, 2)["status"] == "pending"
    jobs = TrainingJobs(registry)
    queued = [2, *(jobs.create(MODEL, parse_args({"seed": n})).version for n in range(5))]
    assert queued == [2, 3, 4, 5, 6, 7]
    try:
        with (
            worker(env, tmp_path / "worker-1.log", "--work", "training") as first,
            worker(env, tmp_path / "worker-2.log", "--work", "training") as second,
        ):
            wait_until(
                lambda: all(job(registry, n)["status"] == "done" for n in queued),
                180,
                "the queue never emptied",
            )
            for process in (first, second):
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=20) == 0
        finished = {n: job(registry, n) for n in queued}
        assert all(j["attempts"] == 1 and j["version_status"] == "ready" for j in finished.values()), finished
        owners = {j["lease_owner"].split(":")[1] for j in finished.values()}
        assert owners <= {str(first.pid), str(second.pid)}
        # Every training each worker began, from its log: each version once, by one worker.
        began = [
            int(n)
            for log in ("worker-1.log", "worker-2.log")
            for n in re.findall(r"training version (\d+) of .* as ", (tmp_path / log).read_text())
        ]
        assert sorted(began) == queued
    finally:
        registry.engine.dispose()


def test_a_server_trains_what_it_is_sent_with_its_configured_defaults(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    data = write_rows(tmp_path / "small.csv", project_rows(per_tag=15))
    defaults = tmp_path / "args.json"
    defaults.write_text(json.dumps({"C": 0.5, "seed": 99}), encoding="utf-8")
    env = {
        **env_for(database_url, store, data),
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_TRAINING_ARGS": str(defaults),
    }

    def trained(response: httpx.Response) -> dict:
        assert response.status_code == 202, response.text
        location = base + response.headers["location"]
        wait_until(
            lambda: httpx.get(location, timeout=10).json()["data"]["version"]["status"] != "training",
            120,
            "never trained",
        )
        return httpx.get(location, timeout=10).json()["data"]["version"]

    try:
        with gunicorn(env, tmp_path / "server.log", workers=1) as (base, process):
            server_workers = {str(pid) for pid in worker_pids(process.pid)}
            left_out = trained(httpx.post(base + VERSIONS, json={}, headers=ADMIN, timeout=30))
            assert left_out["status"] == "ready", left_out
            assert (left_out["args"]["C"], left_out["args"]["seed"]) == (0.5, 99)  # the server's defaults
            assert left_out["args"]["max_iter"] == 1000  # what the file leaves out: the built-in default
            given = trained(httpx.post(base + VERSIONS, json={"args": {"C": 3.0}}, headers=ADMIN, timeout=30))
            assert (given["args"]["C"], given["args"]["seed"]) == (3.0, 99)  # the request's value wins
            assert registry.load(MODEL, given["version"]).arg("C") == 3.0
            # Trained by the server's own runner, in its worker process (through a child of it).
            owner_pid = job(registry, given["version"])["lease_owner"].split(":")[1]
            assert owner_pid in server_workers
    finally:
        registry.engine.dispose()


def test_a_worker_stops_a_training_longer_than_its_timeout_and_fails_the_version(
    tmp_path, database_url, trained_model
):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    # Half a second: the training process has not even imported scikit-learn by then.
    env = {**env_for(database_url, store, bundled_dataset_path()), "COE_TRAINING_TIMEOUT": "0.5"}
    number = TrainingJobs(registry).create(MODEL, parse_args({})).version
    try:
        with worker(env, tmp_path / "worker.log", "--work", "training") as process:
            wait_until(lambda: job(registry, number)["version_status"] != "training", 60, "never stopped")
            wait_until(lambda: not trainers_of(process.pid), 10, "the training process outlived its timeout")
        assert job(registry, number) == {
            "status": "failed",
            "attempts": 1,
            "lease_owner": job(registry, number)["lease_owner"],
            "version_status": "failed",
            "error": "training took longer than 0.5 s (COE_TRAINING_TIMEOUT): stopped",
        }
    finally:
        registry.engine.dispose()


def claims(log: Path) -> list[str]:
    """The lines in which a runner says it took a job ("training version 2 of … as <owner>")."""
    return [line for line in log.read_text().splitlines() if re.search(r" training .+ as ", line)]


def test_a_worker_that_cannot_read_its_training_data_leaves_the_queue_to_others(
    tmp_path, database_url, trained_model
):
    """A worker misconfigured on its host says so once and claims nothing, while one configured
    right beside it trains the whole queue."""
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    unreadable = tmp_path / "mounted" / "projects.csv"
    unreadable.mkdir(parents=True)  # a directory where the CSV should be
    queued = [TrainingJobs(registry).create(MODEL, parse_args({"seed": n})).version for n in range(2)]
    log, configured_log = tmp_path / "misconfigured.log", tmp_path / "configured.log"
    data = write_rows(tmp_path / "small.csv", project_rows(per_tag=15))
    try:
        with worker(env_for(database_url, store, unreadable), log, "--work", "training") as process:
            wait_until(lambda: "not a readable file" in log.read_text(), 60, "no error logged")
            # Both poll the queue while the configured one trains it: a claim by the other would show
            # as a second attempt, a failed version and a "training … as" line in its log.
            with worker(env_for(database_url, store, data), configured_log, "--work", "training"):
                wait_until(
                    lambda: all(job(registry, n)["status"] == "done" for n in queued), 120, "never trained"
                )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        assert [(job(registry, n)["attempts"], job(registry, n)["version_status"]) for n in queued] == [
            (1, "ready"),
            (1, "ready"),
        ]
        assert len(claims(configured_log)) == 2, configured_log.read_text()
        assert claims(log) == []
        lines = log.read_text().splitlines()
        errors = [line for line in lines if "ERROR" in line]
        assert len(errors) == 1 and errors[0].endswith(
            f"training: COE_TRAINING_DATA ({unreadable}) is not a readable file: this process trains nothing; "
            "queued versions wait for a runner that can read its training data"
        ), errors
    finally:
        registry.engine.dispose()


def test_a_worker_counts_the_training_tries_it_ended_on_its_metrics_port(
    tmp_path, database_url, trained_model
):
    """With training out of the server (the production layout), the count is where the work is done."""
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    data = write_rows(tmp_path / "small.csv", project_rows(per_tag=15))
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    env = {**env_for(database_url, store, data), "COE_WORKER_METRICS_ADDR": "127.0.0.1"}
    log = tmp_path / "worker.log"
    try:
        with worker(env, log, "--work", "training", "--metrics-port", str(port)):
            wait_until(
                lambda: f"metrics on 127.0.0.1:{port}" in log.read_text(), 60, "the worker did not start"
            )
            assert samples(metrics_url, "coe_training_attempts_total") == {}
            number = TrainingJobs(registry).create(MODEL, parse_args({})).version
            wait_until(lambda: job(registry, number)["status"] == "done", 120, "never trained")
            # The runner counts a try just after recording it: the job may show done a moment earlier.
            wait_until(
                lambda: samples(metrics_url, "coe_training_attempts_total") == {(("outcome", "done"),): 1.0},
                10,
                f"not counted: {samples(metrics_url, 'coe_training_attempts_total')}",
            )
    finally:
        registry.engine.dispose()

"""Only ``coe-template db upgrade`` changes the schema: a server or worker finding it out of date refuses to start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coe_template.registry.db import head_revision
from tests.conftest import PROJECT_ROOT
from tests.servers import gunicorn


def test_a_server_refuses_a_database_without_the_schema_and_changes_nothing(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(RuntimeError, match="gunicorn exited") as refused:
        with gunicorn({"COE_MODEL_STORE": str(store)}, tmp_path / "server.log", workers=1):
            pass
    url = f"sqlite:///{store / 'registry.db'}"
    assert (
        f"SchemaNotCurrent: the database {url} has no registry schema yet: "
        "run `coe-template db upgrade` first"
    ) in str(refused.value)
    check = subprocess.run(
        [sys.executable, "-m", "coe_template.cli", "--store", str(store), "db", "check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1  # the refused start created no table


def test_a_worker_refuses_an_old_schema_and_starts_once_upgraded(tmp_path):
    store = tmp_path / "store"

    def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coe_template.cli", "--store", str(store), *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    refused = cli("worker")
    url = f"sqlite:///{store / 'registry.db'}"
    assert (refused.returncode, refused.stderr) == (
        1,
        f"Error: the database {url} has no registry schema yet: run `coe-template db upgrade` first\n",
    )
    assert (
        cli("db", "upgrade").stdout == f"{url}: schema upgraded from revision (empty) to {head_revision()}\n"
    )
    with subprocess.Popen(
        [sys.executable, "-m", "coe_template.cli", "--store", str(store), "worker"],
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    ) as worker:
        try:
            assert worker.stderr is not None
            assert worker.stderr.readline().startswith("worker: batch, training from ")
        finally:
            worker.terminate()
            assert worker.wait(timeout=30) == 0

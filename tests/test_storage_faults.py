"""The disk under the real server fills up, or turns read-only: 507 or 503 that say so, never a 500.

A small tmpfs is the model store (we run as root in CI; the test skips with the reason
where mounting is impossible), filled to the last byte while the server runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coe_template.artifacts.runs import runs_dir
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.servers import gunicorn
from tests.waiting import wait_until

BODY = {"texts": [{"text": "ML applied to image classification."}]}


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root and mount(8)): {result.stderr.strip()}")


@contextlib.contextmanager
def mounted(*args: str, at: Path) -> Iterator[Path]:
    at.mkdir(parents=True, exist_ok=True)
    _mount(*args, str(at))
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


def fill(directory: Path) -> None:
    """Take every free byte of the filesystem holding ``directory``."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * block):
                    pass
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (directory / "probe").write_bytes(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC


def wait_for_version(base: str, number: int) -> dict:
    """The version once it is no longer training; AssertionError if it still is after two minutes."""

    def trained() -> dict | None:
        version = httpx.get(f"{base}/models/{MODEL}/versions/{number}", timeout=10).json()["data"]["version"]
        return None if version["status"] == "training" else version

    return wait_until(trained, 120, f"version {number} trained", every=0.3)


def test_training_on_a_full_disk_fails_cleanly_and_production_keeps_serving(tmp_path, trained_model):
    with mounted("-t", "tmpfs", "-o", "size=32m", "tmpfs", at=tmp_path / "store") as store:
        database = f"sqlite:///{tmp_path / 'registry.db'}"  # only the artifacts on the small disk
        seeded_registry(database, store, trained_model).engine.dispose()
        env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": database, "COE_ADMIN_KEYS": ADMIN_KEY}
        with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _process):
            runs_before = sorted(p.name for p in runs_dir(store).iterdir())
            fill(store)
            response = httpx.post(f"{base}/models/{MODEL}/versions", json={}, headers=ADMIN, timeout=10)
            assert response.status_code == 202, response.text
            version = wait_for_version(base, response.json()["data"]["version"]["version"])
            assert version["status"] == "failed"
            assert version["error"] == (
                "StorageFull: the model store's disk is full (No space left on device): "
                "no space left to write the run; free space and train again"
            )
            # Nothing partial, not even the hidden .tmp directory.
            assert sorted(p.name for p in runs_dir(store).iterdir()) == runs_before
            served = httpx.post(f"{base}/predictions", json=BODY, timeout=10)
            assert served.status_code == 200
            assert served.json()["data"]["model"]["version"] == 1


def test_a_full_database_disk_is_a_507(tmp_path, trained_model):
    with mounted("-t", "tmpfs", "-o", "size=32m", "tmpfs", at=tmp_path / "store") as store:
        registry = seeded_registry(f"sqlite:///{store / 'registry.db'}", store, trained_model)
        registry.engine.dispose()  # the last connection checkpoints and removes the WAL: it must grow again
        env = {"COE_MODEL_STORE": str(store), "COE_ADMIN_KEYS": ADMIN_KEY}
        with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _process):
            fill(store)
            items = [{"id": f"item-{n}", "text": f"object detection number {n}"} for n in range(2000)]
            for n, (path, body) in enumerate(
                [("/batch-predictions", {"items": items}), (f"/models/{MODEL}/versions", {})]
            ):
                response = httpx.post(
                    base + path, json=body, headers={**ADMIN, "X-Request-ID": f"full-{n}"}, timeout=10
                )
                assert response.status_code == 507, response.text
                assert response.headers["retry-after"] == "60"
                assert response.json() == {
                    "type": "/problems/storage-full",
                    "title": "Insufficient Storage",
                    "status": 507,
                    "detail": "the database's disk is full: nothing can be written until space is freed",
                    "request_id": f"full-{n}",
                }
            assert httpx.get(f"{base}/models", timeout=10).status_code == 200  # reading needs no space
            assert httpx.post(f"{base}/predictions", json=BODY, timeout=10).status_code == 200
            (store / "filler").unlink()  # space again: writes work again, no restart
            response = httpx.post(f"{base}/batch-predictions", json={"items": items}, timeout=10)
            assert response.status_code == 202, response.text


def test_a_read_only_sqlite_database_refuses_writes_with_503(tmp_path, trained_model):
    store = tmp_path / "store"
    seeded_registry(f"sqlite:///{store / 'registry.db'}", store, trained_model).engine.dispose()
    env = {"COE_MODEL_STORE": str(store), "COE_ADMIN_KEYS": ADMIN_KEY}
    # A read-only mount of the store (root ignores file modes; a mount it cannot ignore).
    with (
        gunicorn(env, tmp_path / "server.log", workers=1) as (base, process),
        mounted("--bind", "-o", "ro", str(store), at=store),
    ):
        # Files already open stay writable on Linux: a fresh worker opens the database anew.
        worker = int(
            subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "no worker came back"
            time.sleep(0.2)
        for n, (method, path, body) in enumerate(
            [
                ("PUT", f"/models/{MODEL}/aliases/canary", {"version": 1}),
                ("POST", "/batch-predictions", {"items": [{"id": "a", "text": "a CNN"}]}),
            ]
        ):
            response = httpx.request(
                method, base + path, json=body, headers={**ADMIN, "X-Request-ID": f"ro-{n}"}, timeout=10
            )
            assert response.status_code == 503, response.text
            assert response.json() == {
                "type": "/problems/database-unavailable",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "the database is read-only, nothing can be saved: try again later",
                "request_id": f"ro-{n}",
            }
        assert httpx.get(f"{base}/models", timeout=10).status_code == 200
        assert httpx.post(f"{base}/predictions", json=BODY, timeout=10).status_code == 200
    assert "Traceback" not in (tmp_path / "server.log").read_text()

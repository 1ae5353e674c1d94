"""Start the real server, gunicorn with config/gunicorn.py, on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(base: str) -> socket.socket:
    """A raw connection to a test server, for what an HTTP client will not send (slow, partial, malformed)."""
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _health_check(base: str) -> bool:
    return httpx.get(f"{base}/", timeout=1).status_code == 200


@contextmanager
def gunicorn(
    env: dict[str, str],
    log_path: Path,
    workers: int = 2,
    app: str = "wsgi:app",
    ready: Callable[[str], bool] = _health_check,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield the base URL and process once ``ready(base)`` (by default ``GET /``) answers; kill it afterwards."""
    port = port or free_port()
    # Each server's metrics files beside its log, not in a temp dir a SIGKILL would leave behind.
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / f"metrics-{port}"),
        **env,
        "COE_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
    }
    with log_path.open("w") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py", app],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a test can kill -9 all of it at once
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if ready(base):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn serving {app} was not ready within 60 s:\n{log_path.read_text()}"
                )
            time.sleep(0.2)
        yield base, process
    finally:
        # The whole process group: killing only the master would orphan its workers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def worker_pids(master_pid: int) -> list[int]:
    """The master's child processes: its workers, as the kernel lists them."""
    children: list[int] = []
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            children.extend(int(pid) for pid in (task / "children").read_text().split())
    return sorted(children)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for process {pid}")


def connections_to(port: int, pid: int) -> int:
    """TCP connections process ``pid`` holds open (a file descriptor) to ``port`` (IPv4), whatever their
    state: connecting, established, or given up on but not yet closed."""
    sockets = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if int((fields := line.split())[2].split(":")[1], 16) == port
    }
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed while being listed
            target = os.readlink(fd)
            held += target.startswith("socket:[") and target[8:-1] in sockets
    return held

"""PostgreSQL for tests: a schema of its own on the shared server, or a private server to stop and freeze."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


@contextmanager
def postgres_schema(url: str, prefix: str = "test") -> Iterator[str]:
    """``url`` with its search path set to a new, empty schema, dropped with all it holds afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class PrivatePostgres:
    """A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl``), so it can be stopped and frozen.

    Never the shared server: this one lives in a temporary directory, listens on a free
    port and a socket of its own, and is removed afterwards. Runs as the ``postgres`` user
    (the server refuses to run as root).
    """

    USER = "postgres"

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.root, self.port = bin_dir, root, port
        self.data = root / "data"
        self.url = f"postgresql+psycopg://{self.USER}@127.0.0.1:{port}/postgres"

    @staticmethod
    def binaries() -> Path | None:
        """The newest installed server's bin directory, if any."""
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        return found[-1].parent if found else None

    def _run(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", self.USER, "--", *command],
            check=True,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.USER,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = self._postmaster()
        found = subprocess.run(
            ["pgrep", "-P", str(postmaster)], stdout=subprocess.PIPE, text=True, check=False
        )
        return [postmaster, *map(int, found.stdout.split())]

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped (``SIGSTOP``): connections open, nothing answers.

        The postmaster stops first, so no backend it forks afterwards escapes the freeze
        (listing the children first let a connection opened in between be served).
        """
        pids = [self._postmaster()]
        try:
            os.kill(pids[0], signal.SIGSTOP)
            pids = self.pids()
            for pid in pids[1:]:
                os.kill(pid, signal.SIGSTOP)
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


@contextmanager
def private_postgres(port: int) -> Iterator[PrivatePostgres]:
    """Initialise and start a private server; stop and remove it afterwards. Skips without PostgreSQL."""
    bin_dir = PrivatePostgres.binaries()
    if bin_dir is None or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and runuser")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="coe-postgres-"))
    shutil.chown(root, PrivatePostgres.USER)
    server = PrivatePostgres(bin_dir, root, port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            for pid in server.pids():  # thaw anything a failed test left frozen
                os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

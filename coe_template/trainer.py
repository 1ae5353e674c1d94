"""Training runners: claim a training job, train it in a child process, complete it conditionally.

Both places a runner runs, a thread in every server process and ``coe-template worker``,
train in a child process (``python -m coe_template.trainer``), for one reason each and
one more for both: in a server, fitting in-process would hold the GIL the serving
threads need; in a worker, batch threads share the process, and a stop can end a
training at once by ending its child, where a thread cannot be interrupted; and one
code path is tested once. The runner's thread claims the job, renews its lease from
a :class:`~coe_template.jobs.leases.LeaseKeeper` and waits for the child.

The child reads its request on stdin, answers on stdout, and exits as soon as its
stdin closes: a runner killed with -9 takes its child along, its lease runs out and
another runner retries the job. The child never writes to the registry; only the
runner completes, and only while it still holds the lease, so a stale result is
never recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coe_template.errors import CoeError, DatabaseUnavailable
from coe_template.jobs.leases import LeaseKeeper
from coe_template.jobs.runner import Runner
from coe_template.ledger.training_data import labelled_texts
from coe_template.model.args import parse_args
from coe_template.model.data import load_dataset, with_labels
from coe_template.model.train import train
from coe_template.registry.training import (
    TIMEOUT_SECONDS,
    WITH_LABELS,
    TrainingClaim,
    TrainingJobs,
    timeout_message,
)

log = logging.getLogger(__name__)

#: Told of every job a runner finishes with: ``done`` (the version is ready), ``failed`` (training
#: failed: the version says why), ``dropped`` (its lease went meanwhile: nothing recorded) or
#: ``given back`` (the runner stopped first; see :meth:`TrainingJobs.release` for when that counts).
TrainingObserver = Callable[[TrainingClaim, str], None]
#: The training child's environment beyond the runner's, read by OpenBLAS, OpenMP and MKL as they load:
#: one thread each. A fit is a sequence of small BLAS calls; on a few busy cores (the server's workers
#: share them) a pool of threads per call made fits 15-25x slower than one thread.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
#: What a training comes to: ``("ready", TrainedModel)`` or ``("failed", why)``.
Outcome = tuple[str, Any]


def train_version(args: dict[str, Any], data: Path, labelled: list[tuple[str, str]] | None = None) -> Outcome:
    """Load the data (and the ``labelled`` rows, if given) and train with ``args``; a failure of
    training itself is told, not raised."""
    try:
        dataset = load_dataset(data)
        if labelled is not None:
            dataset = with_labels(dataset, labelled)
        return "ready", train(dataset, parse_args(args))
    except Exception as exc:
        if not isinstance(exc, CoeError):
            log.exception("training failed unexpectedly")
        return "failed", _why(exc, Path(data))


def _why(exc: Exception, data: Path) -> str:
    """Why training failed, as the version records it: every client can read that, so no server path.

    The package's own errors are written for people; the data file they name is called by its
    name alone. Any other error can hold anything (a path, a query): it goes to the log.
    """
    if isinstance(exc, CoeError):
        return f"{type(exc).__name__}: {exc}".replace(str(data), f"the training data ({data.name})")
    return f"{type(exc).__name__}: training failed unexpectedly; the traceback is in the server's log"


def _child() -> None:
    """The child's side: one JSON request on stdin, one pickled :data:`Outcome` on stdout."""
    from config.logging import configure as configure_logging
    from config.settings import Settings

    settings = Settings.from_env()  # the runner's environment: its log format, level and keys to mask
    configure_logging(settings.log_format, settings.log_level, settings.admin_keys | settings.read_keys)
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to the log, not into the answer
    request = json.loads(sys.stdin.buffer.readline() or b"null")
    if request is None:
        sys.exit(2)
    from threadpoolctl import threadpool_info

    pools = ", ".join(f"{pool['internal_api']} {pool['num_threads']}" for pool in threadpool_info())
    log.info("training child %d: BLAS/OpenMP threads: %s", os.getpid(), pools or "none loaded")

    def orphaned() -> None:  # the runner closes our stdin only once it has the answer, or when it dies
        sys.stdin.buffer.read()
        os._exit(3)

    threading.Thread(target=orphaned, name="orphaned", daemon=True).start()
    labelled = request.get("labelled")
    outcome = train_version(
        request["args"], Path(request["data"]), None if labelled is None else [tuple(row) for row in labelled]
    )
    answer.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    answer.close()
    os._exit(0)  # not a normal exit: the thread still reading stdin would abort the interpreter's shutdown


class TrainingRunner(Runner[TrainingClaim]):
    """Claims training jobs one at a time, trains each in a child process, and completes it
    (the loop, start and stop: :class:`~coe_template.jobs.runner.Runner`)."""

    kind = "training"
    unit = "training job"

    def __init__(
        self,
        jobs: TrainingJobs,
        data: Path,
        poll_seconds: float = 1.0,
        observe: TrainingObserver = lambda claim, outcome: None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(jobs.created, poll_seconds)
        self.jobs = jobs
        self.data = Path(data)
        #: A try that trains longer is stopped and its version failed: a hung child never holds a job for ever.
        self.timeout_seconds = timeout_seconds
        self.observe = observe
        #: The training process of the job in hand, for stop() to end.
        self._child: subprocess.Popen | None = None

    def _claim(self) -> TrainingClaim | None:
        return self.jobs.claim(self.owner)

    def _give_back(self, claim: TrainingClaim, ran_seconds: float) -> bool:
        """A give-back after training longer than a lease counts as a try (see :meth:`TrainingJobs.release`)."""
        return self.jobs.release(claim, ran_seconds)

    def _work(self, claim: TrainingClaim) -> None:
        log.info("training %s as %s", claim, claim.owner)
        started = time.monotonic()
        with LeaseKeeper(lambda: self.jobs.renew(claim), f"training {claim}", self.jobs.lease) as lease:
            kind, value = self._train(claim, lease.lost)
            if lease.lost.is_set():
                outcome = "dropped"
            elif kind == "ready":
                outcome = self._complete(claim, value)
            elif kind == "failed":
                outcome = "failed" if self.jobs.fail(claim, value) else "dropped"
            elif kind == "timeout":
                outcome = (
                    "failed" if self.jobs.fail(claim, timeout_message(self.timeout_seconds)) else "dropped"
                )
            elif self._stop.is_set():  # ended by stop(), which gives the job back
                outcome = "given back"
            else:  # the child died by itself (e.g. out of memory): retrying would die the same way
                why = f"the training process ended without a result (exit status {value})"
                outcome = "failed" if self.jobs.fail(claim, why) else "dropped"
        log.info("training %s: %s after %.1f s", claim, outcome, time.monotonic() - started)
        self.observe(claim, outcome)

    def _complete(self, claim: TrainingClaim, trained: Any) -> str:
        """Store the trained version; a store that cannot take it (a full disk, …) fails the version."""
        try:
            return "done" if self.jobs.complete(claim, trained) else "dropped"
        except DatabaseUnavailable:
            raise  # not the version's fault: its lease runs out and the job is tried again
        except Exception as exc:
            if not isinstance(exc, CoeError):
                log.exception("storing %s failed unexpectedly", claim)
            return "failed" if self.jobs.fail(claim, _why(exc, self.data)) else "dropped"

    def _labelled(self, claim: TrainingClaim) -> dict[str, Any]:
        """The labelled ledger rows a ``bundled+labels`` training learns from, read here: the child gets rows,
        never the database."""
        if claim.data != WITH_LABELS:
            return {}
        rows = labelled_texts(self.jobs.engine, claim.model)
        log.info("training %s: %d labelled rows from the ledger", claim, len(rows))
        return {"labelled": rows}

    def _train(self, claim: TrainingClaim, lost: threading.Event) -> Outcome:
        """Train in a child process; ``("ended", exit status)`` if it gave no answer (killed, crashed),
        ``("timeout", seconds)`` if it was stopped for training longer than :attr:`timeout_seconds`."""
        request = (
            json.dumps({"args": claim.args, "data": str(self.data), **self._labelled(claim)}).encode() + b"\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "coe_template.trainer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **ONE_THREAD},
        )  # a Ctrl-C is the runner's to handle
        stdin, stdout = child.stdin, child.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        with self._lock:
            self._child = child
        answer: list[bytes] = []
        try:
            with contextlib.suppress(OSError):  # a child that died at once: told by its empty answer
                stdin.write(request)
                stdin.flush()
            reader = threading.Thread(
                target=lambda: answer.append(stdout.read()), name="trainer-answer", daemon=True
            )
            reader.start()
            deadline = time.monotonic() + self.timeout_seconds
            timed_out = False
            while reader.is_alive():
                reader.join(timeout=0.2)
                if (
                    lost.is_set()
                ):  # another runner may hold the job now (or it was cancelled): stop spending CPU
                    child.kill()
                elif time.monotonic() > deadline and not timed_out:
                    log.error(
                        "training %s: longer than %g s (COE_TRAINING_TIMEOUT): stopping it",
                        claim,
                        self.timeout_seconds,
                    )
                    timed_out = True
                    child.kill()
            child.wait()
        finally:
            with contextlib.suppress(OSError):
                stdin.close()
            stdout.close()
            with self._lock:
                self._child = None
        if timed_out:
            return "timeout", self.timeout_seconds
        if not answer or not answer[0]:
            return "ended", child.returncode
        return pickle.loads(answer[0])  # our own child's answer

    def readable_data(self) -> bool:
        """Whether the training data is a file this process can read; if not, says so once in the log.

        A runner that cannot read it would claim every queued job and fail each one: it
        takes none, and leaves them to a runner configured right.
        """
        if self.data.is_file() and os.access(self.data, os.R_OK):
            return True
        log.error(
            "training: COE_TRAINING_DATA (%s) is not a readable file: this process trains nothing; "
            "queued versions wait for a runner that can read its training data",
            self.data,
        )
        return False

    def start(self) -> None:
        """Start taking jobs in a thread, unless the training data cannot be read (see :meth:`readable_data`)."""
        self._stop.clear()
        if self.readable_data():
            super().start()

    def _stopped(
        self,
        in_hand: TrainingClaim | None,
        given_back: TrainingClaim | None,
        ran_seconds: float,
        grace: float,
    ) -> None:
        """A job given back has its child process ended; a result that still arrives is refused."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if given_back is not None:
            log.info("stopping: %s given back unfinished after %.0f s", given_back, ran_seconds)
        with self._lock:
            child = self._child
        if child is not None:
            child.kill()
        thread.join(timeout=grace)


if __name__ == "__main__":
    _child()

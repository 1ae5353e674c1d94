"""Work batch jobs chunk by chunk: in each server process, or from the terminal."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from coe_template.batch.jobs import BatchJobs, Claim
from coe_template.predict import tag
from coe_template.store import Artifacts

log = logging.getLogger(__name__)

#: A chunk whose worker died this many times fails its job instead of killing more workers.
MAX_ATTEMPTS = 3

Loader = Callable[[str, int], Artifacts]
#: Told of every chunk this runner finishes with: ``done`` (stored), ``dropped`` (its lease
#: or job went meanwhile: nothing stored) or ``failed`` (its job failed).
Observer = Callable[[Claim, str], None]


class BatchRunner:
    def __init__(self, jobs: BatchJobs, load: Loader, poll_seconds: float = 0.1,
                 observe: Observer = lambda claim, outcome: None) -> None:
        self.jobs = jobs
        self.load = load
        self.observe = observe
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = False  # the last claim found a chunk

    def run_once(self) -> Claim | None:
        """Claim, predict and store one chunk; None when there is nothing to do."""
        claim = self.jobs.claim(self.owner, look_first=not self._busy)
        self._busy = claim is not None
        if claim is None:
            return None
        if claim.attempts > MAX_ATTEMPTS:
            self.jobs.fail(claim.job_id, f"chunk {claim.number} was abandoned {MAX_ATTEMPTS} times")
            self.observe(claim, "failed")
            return claim
        try:
            artifacts = self.load(claim.model_name, claim.model_version)
        except Exception as exc:  # the job cannot run without its model: say why
            self.jobs.fail(claim.job_id, f"cannot load version {claim.model_version}: {exc}")
            self.observe(claim, "failed")
            return claim
        tags, probabilities = tag([text for _, text in claim.items], artifacts)
        stored = self.jobs.complete(claim, tags, probabilities.tolist(), artifacts.labels)
        self.observe(claim, "done" if stored else "dropped")
        return claim

    def run_until_idle(self, on_chunk: Callable[[Claim], None] = lambda claim: None) -> None:
        while (claim := self.run_once()) is not None:
            on_chunk(claim)

    def _idle(self) -> None:
        """Wait for the next poll, or less: a job created in this process (or stop()) wakes it."""
        self.jobs.created.wait(self.poll_seconds)
        self.jobs.created.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() is None:
                    self._idle()
            except Exception:  # keep working: a lease left behind expires and is retried
                log.exception("batch chunk failed")
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # after a fork
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="batch-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.jobs.created.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

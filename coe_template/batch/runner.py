"""Work batch jobs chunk by chunk: in each server process, in a worker of its own, or from the terminal.

A runner holds one chunk at a time under a short lease that a small thread renews
while the chunk is predicted and stored; a runner told to stop finishes its chunk
within a grace period or gives it back, so nobody waits for a lease to run out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from coe_template.artifacts.runs import Artifacts
from coe_template.batch.jobs import PURGE_ROWS, BatchJobs, Claim, PurgeStep
from coe_template.errors import DatabaseUnavailable
from coe_template.jobs.leases import LeaseKeeper
from coe_template.jobs.runner import GRACE_SECONDS as GRACE_SECONDS  # the CLI and the server read it here
from coe_template.jobs.runner import Runner
from coe_template.model.predict import tag

log = logging.getLogger(__name__)


Loader = Callable[[str, int], Artifacts]
#: Told of every chunk this runner finishes with: ``done`` (stored), ``dropped`` (its lease
#: or job went meanwhile: nothing stored) or ``failed`` (its job failed).
Observer = Callable[[Claim, str], None]
#: Told of every purge step this runner took (``step.done``: a job is gone).
PurgeObserver = Callable[[PurgeStep], None]
#: Seconds between looks for jobs past their retention while none is being purged.
PURGE_EVERY_SECONDS = 60.0


class Progress:
    """INFO lines of a runner's progress: a job's first chunk, then at most one line per ``every``
    seconds, and one when the runner runs out of work: the job, its chunk, items/s."""

    def __init__(
        self, jobs: BatchJobs, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.jobs = jobs
        self.every = every
        self.clock = clock
        self._since = 0.0
        self._items = 0
        self._last: Claim | None = None
        self._logged_job: str | None = None

    def chunk_done(self, claim: Claim, started: float) -> None:
        """Count a stored chunk whose work began at ``started`` (a reading of ``clock``)."""
        if not self._items:
            self._since = started
        self._items += len(claim.items)
        self._last = claim
        if claim.job_id != self._logged_job or self.clock() - self._since >= self.every:
            self.flush()

    def flush(self) -> None:
        claim = self._last
        if claim is None or not self._items:
            return
        rate = self._items / max(self.clock() - self._since, 1e-6)
        try:
            job = self.jobs.get(claim.job_id)
            done = f"{job.done_items:,} of {job.total_items:,} items done, job {job.status}"
        except Exception:  # a progress line is not worth failing a chunk for
            done = "progress unknown"
        log.info("batch job %s: chunk %d stored (%s); %.0f items/s", claim.job_id, claim.number, done, rate)
        self._logged_job, self._items = claim.job_id, 0


class Retention:
    """Removes finished jobs past their retention (``BatchJobs.retention``) from a runner's loop.

    One bounded step per turn of the loop, between chunks: a purge never holds up chunk work
    for more than one short transaction, and under load it keeps pace one step per chunk. While
    no job has expired it looks again every ``every`` seconds. INFO lines: a job's purge begun,
    its progress at most every ``log_every`` seconds, and its end, with counts.
    """

    def __init__(
        self,
        jobs: BatchJobs,
        observe: PurgeObserver = lambda step: None,
        every: float = PURGE_EVERY_SECONDS,
        rows: int = PURGE_ROWS,
        log_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.observe = observe
        self.every = every
        self.rows = rows
        self.log_every = log_every
        self.clock = clock
        self._next = 0.0  # when to look again for an expired job
        self._deleted: dict[str, int] = {}  # rows deleted per table, for the job being purged
        self._logged = 0.0

    def step(self) -> PurgeStep | None:
        """One purge step if one is due; None when there was nothing to do (or it failed: logged)."""
        if self.jobs.retention is None or self.clock() < self._next:
            return None
        try:
            step = self.jobs.purge_step(self.rows)
        except Exception as exc:  # chunk work goes on; the purge is tried again later
            if isinstance(exc, DatabaseUnavailable):
                log.warning("batch retention: purge postponed %g s: %s", self.every, exc)
            else:
                log.exception("batch retention: purge step failed; trying again in %g s", self.every)
            self._next = self.clock() + self.every
            return None
        if step is None:
            self._next = self.clock() + self.every
            return None
        self._log(step)
        self.observe(step)
        return step

    def _log(self, step: PurgeStep) -> None:
        if step.table == "marked":
            self._deleted, self._logged = {}, self.clock()
            log.info(
                "batch retention: job %s (%s items, finished %s) is past its retention of %s: "
                "removing it; clients now get 404",
                step.job_id,
                f"{step.total_items:,}",
                step.finished_at.isoformat() if step.finished_at else "at an unknown time",
                self.jobs.retention,
            )
            return
        if step.table != "batch_jobs":
            self._deleted[step.table] = self._deleted.get(step.table, 0) + step.rows
            if self.clock() - self._logged >= self.log_every:
                self._logged = self.clock()
                log.info("batch retention: job %s: %s rows deleted so far", step.job_id, self._counts())
            return
        log.info("batch retention: job %s removed (%s rows deleted)", step.job_id, self._counts())
        self._deleted = {}

    def _counts(self) -> str:
        """Rows deleted per table, in the order they go (results, chunks, inputs)."""
        return ", ".join(f"{n:,} {table}" for table, n in self._deleted.items()) or "no other"


class BatchRunner(Runner[Claim]):
    """Works batch chunks; its loop also steps the retention purge (the loop, start and stop: :class:`Runner`)."""

    kind = "batch"
    unit = "batch chunk"

    def __init__(
        self,
        jobs: BatchJobs,
        load: Loader,
        poll_seconds: float = 0.1,
        observe: Observer = lambda claim, outcome: None,
        purged: PurgeObserver = lambda step: None,
        chores: Sequence[Callable[[], object | None]] = (),
    ) -> None:
        super().__init__(jobs.created, poll_seconds)
        #: Other bounded steps the loop takes each turn (the ledger's expiry), like the purge's.
        self.chores = tuple(chores)
        self.jobs = jobs
        self.load = load
        self.observe = observe
        self.progress = Progress(jobs)
        #: Only a started runner purges (its loop): ``run_once`` and ``run_until_idle`` do not.
        self.retention = Retention(jobs, observe=purged)
        self._busy = False  # the last claim found a chunk

    def _claim(self) -> Claim | None:
        claim = self.jobs.claim(self.owner, look_first=not self._busy)
        self._busy = claim is not None
        return claim

    def _give_back(self, claim: Claim, ran_seconds: float) -> bool:
        return self.jobs.release(claim)

    def _work(self, claim: Claim) -> None:
        if claim.gave_up:  # its job failed with the claim: nothing to work
            self.observe(claim, "failed")
            return
        with LeaseKeeper(
            lambda: self.jobs.renew(claim),
            f"chunk {claim.number} of batch job {claim.job_id}",
            self.jobs.lease,
        ) as lease:
            try:
                artifacts = self.load(claim.model_name, claim.model_version)
            except DatabaseUnavailable:
                raise  # not the job's fault: the chunk is claimed again once the database is back
            except Exception as exc:  # the job cannot run without its model: say why
                self.jobs.fail(claim.job_id, f"cannot load version {claim.model_version}: {exc}")
                self.observe(claim, "failed")
                return
            # After loading: a first chunk's rate is not the model's loading time.
            started = self.progress.clock()
            tags, probabilities = tag([text for _, text in claim.items], artifacts)
            if lease.lost.is_set():
                self.observe(claim, "dropped")
                return
            stored = self.jobs.complete(claim, tags, probabilities.tolist(), artifacts.labels)
        self.observe(claim, "done" if stored else "dropped")
        if stored:
            self.progress.chunk_done(claim, started)

    def run_until_idle(self, on_chunk: Callable[[Claim], None] = lambda claim: None) -> None:
        while (claim := self.run_once()) is not None:
            on_chunk(claim)

    def _turn(self) -> object | None:
        """A turn of the loop: a purge step if one is due, then a chunk; None when neither had work."""
        done: object | None = self.retention.step()
        for chore in self.chores:
            done = chore() or done
        claim = self.run_once()
        return claim if claim is not None else done

    def _idle(self) -> None:
        self.progress.flush()

    def _stopped(
        self, in_hand: Claim | None, given_back: Claim | None, ran_seconds: float, grace: float
    ) -> None:
        if given_back is not None:
            log.info(
                "stopping: chunk %d of batch job %s given back unfinished, pending again",
                given_back.number,
                given_back.job_id,
            )
            return
        if self._thread is not None and not self._thread.is_alive():
            self.progress.flush()
            if in_hand is not None:
                log.info("stopping: chunk %d of batch job %s finished first", in_hand.number, in_hand.job_id)

"""Training jobs in the database: one per version to train, claimed under a lease, completed conditionally.

The version and its job are recorded in one transaction; any runner (a thread in a
server process, or ``coe-template worker``) claims the oldest job under a lease it
renews while it trains, exactly as batch chunks are worked. Every change is one
transaction whose UPDATE names the state and lease owner it expects, so two runners
never both finish a job. A lease that runs out means its trainer died: the job is
claimed again once; a job abandoned on its second try too fails its version, naming
the owner that last held it. Nothing here knows a pid: it works across hosts.

No version stays ``training`` once a runner has taken its job: every try is bounded
(the runner stops a training longer than ``COE_TRAINING_TIMEOUT``), and a job
is tried at most :data:`MAX_ATTEMPTS` times. A try counts when its trainer died (its
lease ran out) or when its runner stopped and gave the job back after training for
longer than one lease (a deploy, a recycled server worker); a give-back sooner than
that costs nothing, so a deploy right after a claim does not use up a try. A give-back
on the last try fails the version, saying so: a training longer than its runners live
ends instead of starting over for ever. (The one way left to pass a job on for ever is
runners that are each stopped within one lease of taking it, again and again: server
workers recycled more often than every ``COE_TRAINING_LEASE_SECONDS``.) An administrator can also cancel a version
still training (:meth:`TrainingJobs.cancel`): its holder's next renewal is refused, so
it stops its child and its result is never recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from coe_template.errors import STORED_ERROR_LENGTH, Conflict, InvalidInput
from coe_template.jobs.queue import Held, LeaseQueue
from coe_template.model.args import TrainingArgs
from coe_template.model.train import TrainedModel
from coe_template.registry.db import reader
from coe_template.registry.events import append
from coe_template.registry.records import LeaseLost, VersionInfo
from coe_template.registry.registry import Registry
from coe_template.registry.schema import Model, ModelVersion, TrainingJob, utcnow

#: Seconds a runner holds a training job; renewed every third of it while it trains.
LEASE_SECONDS = 30.0
#: Seconds one try at a training may take before its runner stops it and fails the version.
TIMEOUT_SECONDS = 3600.0
#: Tries a job gets: the first, and one more after its trainer died (its lease ran out) or was
#: stopped after training for longer than one lease.
MAX_ATTEMPTS = 2
#: What a version may train on: the runner's training data, or that and the labelled ledger rows with their text.
BUNDLED, WITH_LABELS = "bundled", "bundled+labels"
#: The error of a version cancelled while it was queued or training.
CANCELLED = "cancelled by an administrator before training finished"

_jobs, _versions, _models = TrainingJob.__table__, ModelVersion.__table__, Model.__table__
#: Training jobs as leased work (the protocol: :mod:`coe_template.jobs.queue`): oldest first, with
#: what to train; a job abandoned :data:`MAX_ATTEMPTS` times fails its version.
TRAININGS = LeaseQueue(
    _jobs,
    ("id",),
    max_attempts=MAX_ATTEMPTS,
    columns=(_jobs.c.version_id, _models.c.name, _versions.c.version, _versions.c.args, _jobs.c.data),
    joins=lambda query: query.join(_versions, _versions.c.id == _jobs.c.version_id).join(
        _models, _models.c.id == _versions.c.model_id
    ),
    order_by=(_jobs.c.created_at, _jobs.c.id),
)
_VERSION = (
    select(_versions.c.id, _versions.c.status)
    .join(_models, _models.c.id == _versions.c.model_id)
    .where(_models.c.name == bindparam("name"), _versions.c.version == bindparam("number"))
)
#: Conditional: a version that is no longer training keeps what it has.
_FAIL_VERSION = (
    update(_versions)
    .where(_versions.c.id == bindparam("version_id"), _versions.c.status == "training")
    .values(status="failed", finished_at=bindparam("now"), error=bindparam("error"))
)


_NAMED = (
    select(_models.c.name, _versions.c.version)
    .join(_models, _models.c.id == _versions.c.model_id)
    .where(_versions.c.id == bindparam("version_id"))
)


def _fail_version(connection: Connection, version_id: int, now: datetime, error: str) -> bool:
    """Fail the version if it is still training, and record it in the history; whether it was."""
    if not connection.execute(_FAIL_VERSION, {"version_id": version_id, "now": now, "error": error}).rowcount:
        return False
    row = connection.execute(_NAMED, {"version_id": version_id}).one()
    append(connection, "version.failed", row.name, to_version=row.version)
    return True


@dataclass(frozen=True)
class TrainingClaim:
    """A training job a runner holds until its lease expires, with what it must train."""

    job_id: int
    version_id: int
    model: str
    version: int
    args: dict[str, Any]
    owner: str
    attempts: int
    #: :data:`BUNDLED` or :data:`WITH_LABELS`.
    data: str = BUNDLED

    @property
    def key(self) -> dict[str, Any]:
        """The job's key in the lease queue."""
        return {"id": self.job_id}

    @property
    def held(self) -> Held:
        """What :meth:`Registry.complete_version` checks and finishes: this job, under this owner's lease."""
        return Held(TRAININGS, self.key, self.owner)

    def __str__(self) -> str:
        return f"version {self.version} of {self.model!r} (training job {self.job_id}, try {self.attempts})"


def abandoned_message(owner: str) -> str:
    return (
        f"training was abandoned {MAX_ATTEMPTS} times; its last trainer, {owner}, stopped renewing its lease"
    )


def timeout_message(seconds: float) -> str:
    return f"training took longer than {seconds:g} s (COE_TRAINING_TIMEOUT): stopped"


def given_back_message(owner: str, attempts: int, ran_seconds: float) -> str:
    return (
        f"training was given back unfinished on its last try ({attempts} of {MAX_ATTEMPTS}): its trainer, "
        f"{owner}, was stopped after {ran_seconds:.0f} s (a restart, a deploy or a recycled server worker)"
    )


class TrainingJobs:
    def __init__(self, registry: Registry, lease_seconds: float = LEASE_SECONDS) -> None:
        self.registry = registry
        self.engine = registry.engine
        self.lease = timedelta(seconds=lease_seconds)
        self.postgres = self.engine.dialect.name == "postgresql"
        #: Set when this process records a job, so its idle runner starts at once instead of at its next poll.
        self.created = threading.Event()

    def create(
        self, name: str, args: TrainingArgs, max_training: int | None = None, data: str = BUNDLED
    ) -> VersionInfo:
        """Record a version (``training``) and its job in one transaction; :class:`Busy` beyond ``max_training``.

        ``data``: :data:`BUNDLED`, or :data:`WITH_LABELS` (the labelled ledger rows are read when the job
        is claimed, so a version trains on the labels on record when it starts)."""
        if data not in (BUNDLED, WITH_LABELS):
            raise InvalidInput(f"data must be {BUNDLED!r} or {WITH_LABELS!r}, not {data!r}")
        version = self.registry.create_version(
            name,
            args,
            max_training=max_training,
            also=lambda session, row: session.add(
                TrainingJob(version=row, status="pending", attempts=0, data=data)
            ),
        )
        self.created.set()
        return version

    def claim(self, owner: str, look_first: bool = True) -> TrainingClaim | None:
        """Take the oldest job nobody holds (or whose holder's lease ran out).

        A job whose lease ran out on its last allowed try is not taken: its version fails,
        naming that owner, and the next job is looked at. ``look_first``: check without a
        write lock that there is a job to take, as idle runners polling should.
        """
        while True:
            now = utcnow()
            if look_first:
                with reader(self.engine).begin() as connection:
                    if not TRAININGS.any_claimable(connection, now):
                        return None
            with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (see db.py)
                taken = TRAININGS.claim(connection, owner, now, now + self.lease)
                if taken is None:
                    return None
                row = taken.row
                if taken.gave_up:
                    error = abandoned_message(taken.last_owner or "nobody")
                    _fail_version(connection, row.version_id, now, error)
                    continue
            return TrainingClaim(
                row.id, row.version_id, row.name, row.version, dict(row.args), owner, taken.attempts, row.data
            )

    def renew(self, claim: TrainingClaim) -> bool:
        """Extend the lease by a full lease from now, if its owner still holds the job."""
        with self.engine.begin() as connection:
            return TRAININGS.renew(connection, claim.key, claim.owner, utcnow() + self.lease)

    def release(self, claim: TrainingClaim, ran_seconds: float = 0.0) -> bool:
        """Give a held job back (a runner stopping) after training it ``ran_seconds``; False if not held.

        Within one lease, the job is pending again as if never claimed. Longer, the try
        counts: pending again for another, or on its last try the version fails (the
        training outlasts its runners, and would start over for ever).
        """
        counted = ran_seconds > self.lease.total_seconds()
        if counted and claim.attempts >= MAX_ATTEMPTS:
            return self.fail(claim, given_back_message(claim.owner, claim.attempts, ran_seconds))
        with self.engine.begin() as connection:
            return TRAININGS.release(connection, claim.key, claim.owner, counted=counted)

    def complete(self, claim: TrainingClaim, trained: TrainedModel) -> bool:
        """Store the trained version and mark it ``ready`` and its job done, only if the claim
        still holds and the version is still training; False (nothing recorded) otherwise."""
        try:
            self.registry.complete_version(claim.model, claim.version, trained, held=claim.held)
        except LeaseLost:
            return False
        except Conflict as exc:  # the version is no longer training: the job ends with it
            self.fail(claim, str(exc))
            return False
        return True

    def fail(self, claim: TrainingClaim, error: str) -> bool:
        """Training itself failed (bad data, …): the version is ``failed`` with ``error``, if the claim holds."""
        now = utcnow()
        with self.engine.begin() as connection:
            if not TRAININGS.fail(connection, claim.key, claim.owner, now):
                return False
            _fail_version(connection, claim.version_id, now, error[:STORED_ERROR_LENGTH])
        return True

    def cancel(self, name: str, number: int) -> VersionInfo:
        """Fail a version still training (queued or running) and its job, in one transaction.

        :class:`Conflict` if it is not training (any more). A runner holding the job learns
        it at its next renewal (refused): it stops its child, and its result is refused.
        """
        now = utcnow()
        with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE; PostgreSQL: the UPDATEs decide
            row = connection.execute(_VERSION, {"name": name, "number": number}).first()
            if row is None:
                return self.registry.get_version(name, number)  # raises the NotFound that says which
            # The job first, then the version, as completing and failing do: on PostgreSQL a cancel racing a
            # completion waits for it rather than deadlocking with it.
            TRAININGS.cancel(connection, _jobs.c.version_id == row.id, now)
            if not _fail_version(connection, row.id, now, CANCELLED):
                status = connection.execute(_VERSION, {"name": name, "number": number}).one().status
                raise Conflict(f"version {number} of {name!r} is {status}, not training: nothing to cancel")
        return self.registry.get_version(name, number)

    def counts(self) -> dict[str, int]:
        """Training jobs per status (``pending``, ``running``, ``done``, ``failed``)."""
        with reader(self.engine).begin() as connection:
            return TRAININGS.counts(connection)

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
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from coe_template.args import TrainingArgs
from coe_template.errors import STORED_ERROR_LENGTH
from coe_template.registry.db import reader
from coe_template.registry.registry import Conflict, LeaseLost, Registry, VersionInfo
from coe_template.registry.schema import Model, ModelVersion, TrainingJob, utcnow
from coe_template.train import TrainedModel

#: Seconds a runner holds a training job; renewed every third of it while it trains.
LEASE_SECONDS = 30.0
#: Seconds one try at a training may take before its runner stops it and fails the version.
TIMEOUT_SECONDS = 3600.0
#: Tries a job gets: the first, and one more after its trainer died (its lease ran out) or was
#: stopped after training for longer than one lease.
MAX_ATTEMPTS = 2
#: The error of a version cancelled while it was queued or training.
CANCELLED = "cancelled by an administrator before training finished"

_jobs, _versions, _models = TrainingJob.__table__, ModelVersion.__table__, Model.__table__
#: The oldest job nobody holds, or whose holder's lease ran out before ``now``.
_CLAIMABLE = (
    select(
        _jobs.c.id,
        _jobs.c.status,
        _jobs.c.attempts,
        _jobs.c.lease_owner,
        _jobs.c.version_id,
        _models.c.name,
        _versions.c.version,
        _versions.c.args,
    )
    .join(_versions, _versions.c.id == _jobs.c.version_id)
    .join(_models, _models.c.id == _versions.c.model_id)
    .where(
        or_(
            _jobs.c.status == "pending",
            (_jobs.c.status == "running") & (_jobs.c.lease_expires_at < bindparam("now")),
        )
    )
    .order_by(_jobs.c.created_at, _jobs.c.id)
    .limit(1)
)
_ANY_CLAIMABLE = _CLAIMABLE.with_only_columns(_jobs.c.id)
#: PostgreSQL: other runners skip the row this transaction locks instead of waiting for it.
_CLAIMABLE_LOCKED = _CLAIMABLE.with_for_update(of=_jobs, skip_locked=True)
#: Conditional on the state the claim saw: pending, or running under the lease that ran out.
_SEEN = (
    (_jobs.c.id == bindparam("job"))
    & (_jobs.c.status == bindparam("seen_status"))
    & (_jobs.c.attempts == bindparam("seen_attempts"))
)
_TAKE = (
    update(_jobs)
    .where(_SEEN)
    .values(
        status="running",
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires"),
        attempts=_jobs.c.attempts + 1,
    )
)
_ABANDON = (
    update(_jobs).where(_SEEN).values(status="failed", lease_expires_at=None, finished_at=bindparam("now"))
)
#: Conditional: only the lease's holder renews, gives back or fails its job.
_HELD = (
    (_jobs.c.id == bindparam("job"))
    & (_jobs.c.status == "running")
    & (_jobs.c.lease_owner == bindparam("owner"))
)
_RENEW = update(_jobs).where(_HELD).values(lease_expires_at=bindparam("expires"))
#: Back to pending as if never claimed: a runner that gives a job back was not killed by it.
_RELEASE = (
    update(_jobs)
    .where(_HELD)
    .values(status="pending", lease_owner=None, lease_expires_at=None, attempts=_jobs.c.attempts - 1)
)
#: Back to pending with its attempt counted: its runner trained it for longer than a lease, then stopped.
_RELEASE_COUNTED = (
    update(_jobs).where(_HELD).values(status="pending", lease_owner=None, lease_expires_at=None)
)
_FAIL_JOB = (
    update(_jobs).where(_HELD).values(status="failed", lease_expires_at=None, finished_at=bindparam("now"))
)
#: Conditional: a job nobody finished yet, held or not (a cancel).
_CANCEL_JOB = (
    update(_jobs)
    .where(_jobs.c.version_id == bindparam("of_version"), _jobs.c.status.in_(("pending", "running")))
    .values(status="failed", lease_expires_at=None, finished_at=bindparam("now"))
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
_BY_STATUS = select(_jobs.c.status, func.count()).group_by(_jobs.c.status)


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

    @property
    def held(self) -> tuple[int, str]:
        """What :meth:`Registry.complete_version` checks: this job, still under this owner's lease."""
        return self.job_id, self.owner

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

    def create(self, name: str, args: TrainingArgs, max_training: int | None = None) -> VersionInfo:
        """Record a version (``training``) and its job in one transaction; :class:`Busy` beyond ``max_training``."""
        version = self.registry.create_version(name, args, max_training=max_training, queue=True)
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
                    if connection.execute(_ANY_CLAIMABLE, {"now": now}).first() is None:
                        return None
            with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (see db.py)
                row = connection.execute(
                    _CLAIMABLE_LOCKED if self.postgres else _CLAIMABLE, {"now": now}
                ).first()
                if row is None:
                    return None
                seen = {"job": row.id, "seen_status": row.status, "seen_attempts": row.attempts}
                if row.status == "running" and row.attempts >= MAX_ATTEMPTS:
                    if connection.execute(_ABANDON, {**seen, "now": now}).rowcount:
                        connection.execute(
                            _FAIL_VERSION,
                            {
                                "version_id": row.version_id,
                                "now": now,
                                "error": abandoned_message(row.lease_owner),
                            },
                        )
                    continue
                if not connection.execute(
                    _TAKE, {**seen, "owner": owner, "expires": now + self.lease}
                ).rowcount:
                    continue  # taken meanwhile (cannot happen under the lock; kept conditional all the same)
            return TrainingClaim(
                row.id, row.version_id, row.name, row.version, dict(row.args), owner, row.attempts + 1
            )

    def renew(self, claim: TrainingClaim) -> bool:
        """Extend the lease by a full lease from now, if its owner still holds the job."""
        with self.engine.begin() as connection:
            return bool(
                connection.execute(
                    _RENEW, {"job": claim.job_id, "owner": claim.owner, "expires": utcnow() + self.lease}
                ).rowcount
            )

    def release(self, claim: TrainingClaim, ran_seconds: float = 0.0) -> bool:
        """Give a held job back (a runner stopping) after training it ``ran_seconds``; False if not held.

        Within one lease, the job is pending again as if never claimed. Longer, the try
        counts: pending again for another, or on its last try the version fails (the
        training outlasts its runners, and would start over for ever).
        """
        held = {"job": claim.job_id, "owner": claim.owner}
        if ran_seconds <= self.lease.total_seconds():
            with self.engine.begin() as connection:
                return bool(connection.execute(_RELEASE, held).rowcount)
        if claim.attempts >= MAX_ATTEMPTS:
            return self.fail(claim, given_back_message(claim.owner, claim.attempts, ran_seconds))
        with self.engine.begin() as connection:
            return bool(connection.execute(_RELEASE_COUNTED, held).rowcount)

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
            if not connection.execute(
                _FAIL_JOB, {"job": claim.job_id, "owner": claim.owner, "now": now}
            ).rowcount:
                return False
            connection.execute(
                _FAIL_VERSION,
                {"version_id": claim.version_id, "now": now, "error": error[:STORED_ERROR_LENGTH]},
            )
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
            connection.execute(_CANCEL_JOB, {"of_version": row.id, "now": now})
            if not connection.execute(
                _FAIL_VERSION, {"version_id": row.id, "now": now, "error": CANCELLED}
            ).rowcount:
                status = connection.execute(_VERSION, {"name": name, "number": number}).one().status
                raise Conflict(f"version {number} of {name!r} is {status}, not training: nothing to cancel")
        return self.registry.get_version(name, number)

    def counts(self) -> dict[str, int]:
        """Training jobs per status (``pending``, ``running``, ``done``, ``failed``)."""
        with reader(self.engine).begin() as connection:
            return dict(connection.execute(_BY_STATUS).all())

"""The lease contract of :mod:`coe_template.jobs.queue`, held by both its clients: batch chunks and trainings.

Each test runs once per kind, through the client's own methods (what runners call), on a real
database: the kinds differ only in what their work is, never in how a lease behaves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coe_template.batch.jobs import MAX_ATTEMPTS as CHUNK_ATTEMPTS
from coe_template.batch.jobs import BatchJobs
from coe_template.model.args import parse_args
from coe_template.model.predict import tag
from coe_template.model.train import TrainedModel
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.training import MAX_ATTEMPTS as TRAINING_ATTEMPTS
from coe_template.registry.training import TrainingJobs
from tests.conftest import MODEL

ITEMS = [("a", "image classification with convolutional networks"), ("b", "a recipe for soup")]


@dataclass
class Kind:
    """One client of the queue, driven the same way: ``make`` queues one piece of work (oldest first),
    ``jobs(lease)`` is the client with leases of that many seconds."""

    name: str
    registry: Registry
    trained: TrainedModel
    max_attempts: int

    def jobs(self, lease: float) -> Any:
        if self.name == "batch":
            return BatchJobs(self.registry, chunk_size=len(ITEMS), lease_seconds=lease)
        return TrainingJobs(self.registry, lease_seconds=lease)

    def make(self) -> Any:
        """Queue one piece of work; what :meth:`ident` of its claim will be."""
        if self.name == "batch":
            job, _ = self.jobs(60).create(MODEL, ITEMS)
            return (job.id, 0)
        return self.jobs(60).create(MODEL, parse_args({})).version

    def ident(self, claim: Any) -> Any:
        return (claim.job_id, claim.number) if self.name == "batch" else claim.version

    def finish(self, jobs: Any, claim: Any) -> bool:
        """Complete the work as a runner does."""
        if self.name == "batch":
            tags, probabilities = tag([text for _, text in claim.items], self.registry.load(MODEL, 1))
            return jobs.complete(claim, tags, probabilities.tolist(), self.registry.load(MODEL, 1).labels)
        return jobs.complete(claim, self.trained)

    def outcome(self, made: Any) -> str:
        """What became of the work's owner: the batch job's status, or the version's."""
        if self.name == "batch":
            return self.jobs(60).get(made[0]).status
        return self.registry.get_version(MODEL, made).status


@pytest.fixture(params=["batch", "training"])
def kind(request, database_url, tmp_path: Path, trained_model) -> Iterator[Kind]:
    registry = Registry.open(database_url, tmp_path / "store", upgrade=True)
    registry.ensure_model(MODEL)
    registry.register(MODEL, trained_model)
    registry.set_alias(MODEL, PRODUCTION, 1)
    attempts = CHUNK_ATTEMPTS if request.param == "batch" else TRAINING_ATTEMPTS
    yield Kind(request.param, registry, trained_model, attempts)
    registry.engine.dispose()


def test_a_claim_gives_the_oldest_claimable_work(kind):
    first, second = kind.make(), kind.make()
    jobs = kind.jobs(60)
    assert [kind.ident(jobs.claim("w:1:a")), kind.ident(jobs.claim("w:2:b"))] == [first, second]
    assert jobs.claim("w:3:c") is None


def test_held_work_is_not_claimable_and_expired_work_is(kind):
    made = kind.make()
    held = kind.jobs(60)
    assert kind.ident(held.claim("holder:1:a")) == made
    assert held.claim("other:2:b") is None  # held under a live lease
    expired = kind.jobs(0)
    kind.make()
    dead = expired.claim("dead:3:c")  # its lease ran out the moment it was taken
    again = held.claim("heir:4:d")
    assert (kind.ident(again), again.attempts) == (kind.ident(dead), 2)


def test_only_the_holder_renews(kind):
    kind.make()
    jobs = kind.jobs(0)
    lost = jobs.claim("first:1:a")
    holder = jobs.claim("second:2:b")  # took it over once the first lease ran out
    assert (jobs.renew(lost), jobs.renew(holder)) == (False, True)


def test_only_the_holder_releases_and_a_release_is_not_an_attempt(kind):
    kind.make()
    jobs = kind.jobs(0)
    lost = jobs.claim("first:1:a")
    holder = jobs.claim("second:2:b")
    assert holder.attempts == 2
    assert jobs.release(lost) is False
    assert jobs.release(holder) is True
    assert jobs.release(holder) is False  # no longer held by anyone
    assert jobs.claim("third:3:c").attempts == 2  # the given-back try was not counted


def test_work_is_finished_only_by_its_holder(kind):
    made = kind.make()
    jobs = kind.jobs(0)
    lost = jobs.claim("first:1:a")
    holder = jobs.claim("second:2:b")
    assert kind.finish(jobs, lost) is False
    assert kind.outcome(made) in ("running", "training")  # nothing recorded for the lost lease
    assert kind.finish(jobs, holder) is True
    assert kind.outcome(made) in ("succeeded", "ready")
    assert kind.finish(jobs, holder) is False  # finished once
    assert jobs.claim("third:3:c") is None


def test_work_abandoned_max_attempts_times_is_given_up(kind):
    made = kind.make()
    jobs = kind.jobs(0)
    for n in range(kind.max_attempts):
        assert jobs.claim(f"dead:{n}:x").attempts == n + 1  # each holder died: its lease ran out
    last = jobs.claim("next:9:z")
    assert last is None or last.gave_up  # not taken again: batch tells its runner, training moves on
    assert kind.outcome(made) == "failed"
    assert jobs.claim("after:9:z") is None


LEASE_COLUMNS = re.compile(r"\blease_(owner|expires_at)\b")
#: Where the lease columns may be named: the queue, and the tables that declare them.
ALLOWED = {
    "coe_template/jobs/queue.py",
    "coe_template/batch/schema.py",
    "coe_template/registry/schema.py",
}


def test_no_lease_sql_outside_the_queue():
    """The lease protocol is written once: no other module names the lease columns (migrations excepted)."""
    root = Path(__file__).resolve().parents[3]
    naming = sorted(
        str(path.relative_to(root))
        for path in (root / "coe_template").rglob("*.py")
        if "migrations" not in path.parts and LEASE_COLUMNS.search(path.read_text())
    )
    assert [path for path in naming if path not in ALLOWED] == []

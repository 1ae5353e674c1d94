"""Reading the ledger back by id and by page, and expiring it in bounded steps by the primary key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coe_template.ledger.ids import new_prediction_id
from coe_template.ledger.modes import LogMode
from coe_template.ledger.records import Answered
from coe_template.ledger.store import Expiry, Ledger, PredictionNotFound, Query
from coe_template.ledger.writer import LedgerWriter

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
PROBABILITIES = {"computer-vision": 0.7, "mlops": 0.1, "natural-language-processing": 0.1, "other": 0.1}


def made(
    at: datetime, version: int = 1, tag: str = "computer-vision", model: str = "project-tagger"
) -> Answered:
    return Answered(
        new_prediction_id(int(at.timestamp() * 1000)), model, version, None, "pinned", tag, PROBABILITIES,
        None, None, None, "a text",
    )  # fmt: skip


def record(engine, answered: list[Answered]) -> list[str]:
    writer = LedgerWriter(engine, LogMode("hash"))
    writer.record(answered)
    writer.flush()
    return [a.id for a in answered]


def test_an_unknown_id_is_not_found(engine):
    with pytest.raises(
        PredictionNotFound, match=r"^prediction 0193a5b2-7c1e-7a3b-9f10-2b7c4d5e6f70 not found$"
    ):
        Ledger(engine).get("0193a5b2-7c1e-7a3b-9f10-2b7c4d5e6f70")


def test_an_entry_carries_its_time(engine):
    [one] = record(engine, [made(NOW)])
    assert Ledger(engine).get(one).created_at == NOW


def test_pages_follow_the_ids_and_the_filters(engine):
    hours = [
        made(NOW + timedelta(hours=h), version=1 + h % 2, tag="mlops" if h == 3 else "other")
        for h in range(6)
    ]
    ids = record(engine, [*hours, made(NOW, model="another")])
    ledger = Ledger(engine)
    everything = Query("project-tagger")
    first, after = ledger.page(everything, 4)
    assert [e.id for e in first] == ids[:4] and after == ids[3]
    rest, after = ledger.page(everything, 4, after)
    assert [e.id for e in rest] == ids[4:6] and after is None
    window = Query("project-tagger", since=NOW + timedelta(hours=1), until=NOW + timedelta(hours=4))
    assert [e.id for e in ledger.page(window, 10)[0]] == ids[1:4]
    assert [e.id for e in ledger.page(Query("project-tagger", version=2), 10)[0]] == ids[1:6:2]
    assert [e.id for e in ledger.page(Query("project-tagger", tag="mlops"), 10)[0]] == [ids[3]]
    assert ledger.page(Query("nobody"), 10) == ([], None)


def test_expiry_removes_the_oldest_in_bounded_steps(engine):
    old = record(engine, [made(NOW - timedelta(days=40, minutes=m)) for m in range(7)])
    young = record(engine, [made(NOW - timedelta(days=29))])
    ledger = Ledger(engine, retention=timedelta(days=30))
    assert [ledger.purge_step(3, now=NOW) for _ in range(4)] == [3, 3, 1, 0]
    assert ledger.page(Query("project-tagger"), 10)[0][0].id == young[0]
    for gone in old:
        with pytest.raises(PredictionNotFound):
            ledger.get(gone)


def test_never_keeps_everything(engine):
    record(engine, [made(NOW - timedelta(days=4000))])
    assert Ledger(engine, retention=None).purge_step(now=NOW) == 0


def test_the_runners_step_counts_what_it_removed_and_waits_once_nothing_is_left(engine):
    record(engine, [made(datetime.now(UTC) - timedelta(days=2, minutes=m)) for m in range(5)])
    removed: list[int] = []
    clock = [0.0]
    expiry = Expiry(
        Ledger(engine, timedelta(days=1)), observe=removed.append, every=60, rows=2, clock=lambda: clock[0]
    )
    assert [expiry.step(), expiry.step(), expiry.step(), expiry.step()] == [2, 2, 1, None]
    assert removed == [2, 2, 1]
    record(engine, [made(datetime.now(UTC) - timedelta(days=2))])
    assert expiry.step() is None  # looks again only after `every`
    clock[0] = 61.0
    assert expiry.step() == 1


def test_a_started_batch_runner_expires_the_ledger(registry):
    """What the server's and the worker's batch runners do between chunks (bootstrap.batch_runner)."""
    from coe_template.batch.jobs import BatchJobs
    from coe_template.bootstrap import Observers, batch_runner
    from tests.waiting import wait_until

    old = record(registry.engine, [made(datetime.now(UTC) - timedelta(days=3, minutes=m)) for m in range(3)])
    young = record(registry.engine, [made(datetime.now(UTC))])
    removed: list[int] = []
    runner = batch_runner(
        BatchJobs(registry),
        registry.load,
        Observers(expired=removed.append),
        poll_seconds=0.05,
        predictions=Ledger(registry.engine, timedelta(days=1)),
    )
    runner.start()
    try:
        wait_until(lambda: removed == [3], 30, "the expired predictions removed")
    finally:
        runner.stop()
    ledger = Ledger(registry.engine)
    assert [e.id for e in ledger.page(Query("project-tagger"), 10)[0]] == young
    for gone in old:
        with pytest.raises(PredictionNotFound):
            ledger.get(gone)

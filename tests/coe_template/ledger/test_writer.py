"""The writer: rows queued by requests, written in batches; what each mode keeps; what is dropped and counted."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from coe_template.ledger.ids import new_prediction_id
from coe_template.ledger.modes import LogMode
from coe_template.ledger.records import Answered
from coe_template.ledger.schema import PredictionRow
from coe_template.ledger.store import Ledger
from coe_template.ledger.writer import LedgerWriter
from coe_template.registry.db import make_engine
from tests.waiting import wait_until

PROBABILITIES = {"computer-vision": 0.7, "mlops": 0.1, "natural-language-processing": 0.1, "other": 0.1}


def answered(
    text: str = "Object detection on a Raspberry Pi.", correlation_id: str | None = "t-1"
) -> Answered:
    return Answered(
        new_prediction_id(), "project-tagger", 1, "production", "realtime", "computer-vision",
        PROBABILITIES, 1.5, "req-1", correlation_id, text,
    )  # fmt: skip


class Counts:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, outcome: str, rows: int) -> None:
        self.seen[outcome] = self.seen.get(outcome, 0) + rows


def stored_ids(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(PredictionRow.id).order_by(PredictionRow.id)))


def test_hash_mode_keeps_everything_but_the_text(engine):
    counts = Counts()
    writer = LedgerWriter(engine, LogMode("hash"), observe=counts)
    one = answered()
    writer.record([one])
    assert writer.flush() == 1
    entry = Ledger(engine).get(one.id)
    assert (entry.text, entry.text_sha256) == (None, hashlib.sha256(one.text.encode()).hexdigest())
    assert (entry.model_name, entry.model_version, entry.alias, entry.source) == (
        "project-tagger",
        1,
        "production",
        "realtime",
    )
    assert (entry.tag, entry.probabilities, entry.latency_ms) == ("computer-vision", PROBABILITIES, 1.5)
    assert (entry.request_id, entry.correlation_id, entry.batch_job_id) == ("req-1", "t-1", None)
    assert counts.seen == {"logged": 1}


def test_full_mode_keeps_the_text(engine):
    writer = LedgerWriter(engine, LogMode("full"))
    one = answered("Kubernetes in production")
    writer.record([one])
    writer.flush()
    assert Ledger(engine).get(one.id).text == "Kubernetes in production"


def test_off_keeps_nothing_and_starts_no_thread(engine):
    writer = LedgerWriter(engine, LogMode("off"))
    writer.start()
    writer.record([answered()])
    assert writer.queued == 0
    writer.stop()
    assert stored_ids(engine) == []


def test_a_sample_keeps_a_share(engine):
    writer = LedgerWriter(engine, LogMode("hash", 0.5))
    writer.record([answered() for _ in range(400)])
    kept = writer.flush()
    assert 100 < kept < 300  # 400 draws at 1/2: outside this, 1 in 10^20


def test_the_thread_writes_in_batches_and_a_clean_stop_loses_nothing(engine):
    counts = Counts()
    writer = LedgerWriter(engine, LogMode("hash"), observe=counts, flush_seconds=3600, batch_rows=10)
    writer.start()
    first = [answered() for _ in range(10)]
    writer.record(first)  # a full batch wakes the thread
    wait_until(lambda: stored_ids(engine) == sorted(a.id for a in first), 30)
    rest = [answered() for _ in range(7)]
    writer.record(rest)  # less than a batch: waits for the next flush, or the stop
    writer.stop()
    assert stored_ids(engine) == sorted(a.id for a in first + rest)
    assert counts.seen == {"logged": 17}


def test_a_full_queue_drops_and_counts(engine):
    counts = Counts()
    writer = LedgerWriter(engine, LogMode("hash"), queue_size=3, observe=counts)
    writer.record([answered() for _ in range(5)])
    assert writer.queued == 3
    assert counts.seen == {"queue_full": 2}
    assert writer.flush() == 3


def test_a_database_that_cannot_write_drops_the_batch_and_counts_it(tmp_path: Path, database_url):
    """The SQLite file damaged (the driver's outage errors): the batch is lost and counted; writing
    resumes once the file is back. PostgreSQL's outage: tests/test_database_outage.py."""
    if not database_url.startswith("sqlite"):
        return
    copy = tmp_path / "ledger.db"
    good = Path(database_url.removeprefix("sqlite:///")).read_bytes()
    copy.write_bytes(good)
    engine = make_engine(f"sqlite:///{copy}")
    counts = Counts()
    writer = LedgerWriter(engine, LogMode("hash"), observe=counts)
    try:
        copy.write_bytes(b"not a database" * 512)
        writer.record([answered(), answered()])
        assert writer.flush() == 0
        assert counts.seen == {"database": 2}
        engine.dispose()
        copy.write_bytes(good)
        writer.record([answered()])
        assert writer.flush() == 1
        assert counts.seen == {"database": 2, "logged": 1}
    finally:
        engine.dispose()

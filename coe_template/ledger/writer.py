"""Recording predictions without slowing or failing one: a bounded queue, written in batches.

A request appends what it answered to an in-memory queue (O(1), no lock taken but the
GIL's, never the database: ``POST /predictions`` runs in the event loop's thread) and
a thread of the server process writes the queue in batches, each one ``INSERT`` of many
rows in one short transaction. A full queue drops the prediction's row, and so does a
database that cannot take the batch; both are counted (``coe_predictions_log_dropped_total``),
and the prediction has already been answered. Stopping writes what is queued first.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, insert

from coe_template.ledger.modes import LogMode
from coe_template.ledger.records import Answered
from coe_template.ledger.schema import PredictionRow

log = logging.getLogger(__name__)

#: Predictions a process holds before it drops new ones (``COE_PREDICTION_LOG_QUEUE``).
QUEUE_SIZE = 10_000
#: Rows one transaction writes at most.
BATCH_ROWS = 500
#: Seconds the writer waits for more rows before writing what it has.
FLUSH_SECONDS = 0.5
#: Told how many rows were ``logged``, or dropped for a reason (``queue_full``, ``database``).
LedgerObserver = Callable[[str, int], None]

_TABLE = PredictionRow.__table__


def unobserved(outcome: str, rows: int) -> None:
    """The observer of a process that exports no metrics."""


class LedgerWriter:
    """One per server process: :meth:`record` from any thread, the rows written by a thread of its own."""

    def __init__(
        self,
        engine: Engine,
        mode: LogMode,
        queue_size: int = QUEUE_SIZE,
        observe: LedgerObserver = unobserved,
        flush_seconds: float = FLUSH_SECONDS,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.engine = engine
        self.mode = mode
        self.queue_size = queue_size
        self.observe = observe
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self._queue: deque[Answered] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    def record(self, answered: Iterable[Answered]) -> None:
        """Queue a request's predictions (those the mode keeps); a full queue drops, and counts, the rest."""
        mode, queue = self.mode, self._queue
        dropped = 0
        for each in answered:
            if not mode.chosen():
                continue
            if len(queue) >= self.queue_size:
                dropped += 1
            else:
                queue.append(each)
        if dropped:
            self.observe("queue_full", dropped)
        if len(queue) >= self.batch_rows:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Write everything queued now, batch by batch; the rows written (the others dropped, counted)."""
        written = 0
        while self._queue:
            written += self._write_batch()
        return written

    def _write_batch(self) -> int:
        rows: list[dict[str, Any]] = []
        while self._queue and len(rows) < self.batch_rows:
            rows.append(self._queue.popleft().row(self.mode))
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(_TABLE), rows)
        except Exception as exc:  # an outage or a fault: the rows are lost, the server goes on
            self.observe("database", len(rows))
            message = str(exc)
            if message != self._last_error:
                log.warning("prediction ledger: %d rows not recorded: %s", len(rows), message)
            self._last_error = message
            return 0
        if self._last_error is not None:
            log.info("prediction ledger: recording again")
            self._last_error = None
        self.observe("logged", len(rows))
        return len(rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the writer die: predictions go on either way
                log.exception("prediction ledger: writing failed")

    def start(self) -> None:
        """Start the writing thread (in each server process, after the fork: threads do not survive one)."""
        if not self.mode.keeps_any:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-ledger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then write what is still queued: a clean stop loses no row."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

"""Reading the ledger back (one prediction, or a model's page by page) and expiring it in short steps.

Every query goes by the primary key: ids are UUIDv7s (:mod:`.ids`), time-ordered, so a time
range is an id range (``lowest_id(since) <= id < lowest_id(until)``), a page continues after
the last id it gave, and expiry deletes the lowest ids first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from coe_template.errors import DatabaseUnavailable, NotFound
from coe_template.ledger import ids
from coe_template.ledger.records import Entry
from coe_template.ledger.schema import PredictionRow
from coe_template.registry.db import reader
from coe_template.registry.schema import utc, utcnow

log = logging.getLogger(__name__)

#: Rows one expiry step deletes at most, in one transaction (a short lock, whatever the backlog).
PURGE_ROWS = 5000
#: Seconds between looks for expired predictions once none is left.
PURGE_EVERY_SECONDS = 60.0

_TABLE = PredictionRow.__table__
_COLUMNS = [_TABLE.c[name] for name in Entry.__dataclass_fields__]


class PredictionNotFound(NotFound):
    """No prediction has this id (never made, not recorded, or expired)."""


@dataclass(frozen=True)
class Query:
    """Which of a model's predictions to list: ``since <= time < until``, a tag, a version."""

    model_name: str
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    version: int | None = None


class Ledger:
    """The recorded predictions, read from the registry's database."""

    def __init__(self, engine: Engine, retention: timedelta | None = None) -> None:
        self.engine = engine
        self.retention = retention

    def get(self, prediction_id: str) -> Entry:
        with reader(self.engine).begin() as connection:
            row = connection.execute(select(*_COLUMNS).where(_TABLE.c.id == prediction_id)).first()
        if row is None:
            raise PredictionNotFound(f"prediction {prediction_id} not found")
        return _entry(row._mapping)

    def page(self, query: Query, limit: int, after: str | None = None) -> tuple[list[Entry], str | None]:
        """Up to ``limit`` predictions in the order they were made, after the id ``after``; and the
        id to continue after (None on the last page)."""
        statement = select(*_COLUMNS).where(_TABLE.c.model_name == query.model_name)
        if query.since is not None:
            statement = statement.where(_TABLE.c.id >= ids.lowest_id(_ms(query.since)))
        if query.until is not None:
            statement = statement.where(_TABLE.c.id < ids.lowest_id(_ms(query.until)))
        if after is not None:
            statement = statement.where(_TABLE.c.id > after)
        if query.tag is not None:
            statement = statement.where(_TABLE.c.tag == query.tag)
        if query.version is not None:
            statement = statement.where(_TABLE.c.model_version == query.version)
        with reader(self.engine).begin() as connection:
            rows = connection.execute(statement.order_by(_TABLE.c.id).limit(limit + 1)).all()
        entries = [_entry(row._mapping) for row in rows[:limit]]
        return entries, entries[-1].id if len(rows) > limit else None

    def purge_step(self, rows: int = PURGE_ROWS, now: datetime | None = None) -> int:
        """Delete at most ``rows`` of the predictions past the retention, oldest first; how many went."""
        if self.retention is None:
            return 0
        below = ids.lowest_id(_ms((now or utcnow()) - self.retention))
        with reader(self.engine).begin() as connection:  # look first, without the write lock
            if connection.execute(select(_TABLE.c.id).where(_TABLE.c.id < below).limit(1)).first() is None:
                return 0
        oldest = select(_TABLE.c.id).where(_TABLE.c.id < below).order_by(_TABLE.c.id).limit(rows)
        with self.engine.begin() as connection:
            return connection.execute(delete(_TABLE).where(_TABLE.c.id.in_(oldest))).rowcount


def _ms(moment: datetime) -> int:
    """Unix milliseconds, within what a UUIDv7 holds (0 to 2**48 - 1)."""
    return min(max(int(utc(moment).timestamp() * 1000), 0), 2**48 - 1)


def _entry(row: object) -> Entry:
    values = dict(row)  # type: ignore[call-overload]
    values["created_at"] = utc(values["created_at"])
    return Entry(**values)


#: Told how many rows each expiry step removed.
ExpiryObserver = Callable[[int], None]


class Expiry:
    """Removes predictions past their retention from a runner's loop, one bounded step per turn.

    While a step removes a full ``rows`` another follows at the next turn; once none is left it
    looks again every ``every`` seconds. A failed step is logged and tried again later.
    """

    def __init__(
        self,
        ledger: Ledger,
        observe: ExpiryObserver = lambda rows: None,
        every: float = PURGE_EVERY_SECONDS,
        rows: int = PURGE_ROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.observe = observe
        self.every = every
        self.rows = rows
        self.clock = clock
        self._next = 0.0

    def step(self) -> int | None:
        """One step if one is due: the rows removed (None when nothing was due or left)."""
        if self.ledger.retention is None or self.clock() < self._next:
            return None
        try:
            removed = self.ledger.purge_step(self.rows)
        except Exception as exc:
            if isinstance(exc, DatabaseUnavailable):
                log.warning("prediction ledger retention: postponed %g s: %s", self.every, exc)
            else:
                log.exception("prediction ledger retention: step failed; trying again in %g s", self.every)
            self._next = self.clock() + self.every
            return None
        if removed:
            self.observe(removed)
            log.info(
                "prediction ledger retention: %d predictions past %s removed", removed, self.ledger.retention
            )
        if removed < self.rows:
            self._next = self.clock() + self.every
        return removed or None

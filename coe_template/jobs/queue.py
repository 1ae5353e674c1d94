"""One leased-job queue: the lease protocol, written once, for every kind of leased work.

A kind of work is a table whose rows carry the lease columns (``status``: ``pending``,
``running``, ``done`` or ``failed``; ``attempts``; ``lease_owner``; ``lease_expires_at``).
Its client (batch chunks in :mod:`coe_template.batch.jobs`, trainings in
:mod:`coe_template.jobs.training`) states only its work: the table and its key, what
else a claim reads (joins and columns), which rows are claimable besides the lease's
own rule, their order, and how many tries a row gets. Every statement here runs on the
caller's connection, inside the caller's transaction, so a client changes its own rows
(a job counted, a version failed) in the same commit as the lease.

The rules, decided once for both kinds:

- A row is claimable when ``pending``, or ``running`` under a lease that ran out.
  PostgreSQL claims ``FOR UPDATE SKIP LOCKED``; SQLite's ``BEGIN IMMEDIATE`` makes
  claims one at a time.
- The take is conditional on the status and attempts the claim saw. Under either lock
  nobody can change the row in between, so this costs nothing, and a claim stays right
  should the locking ever change (batch used to take unconditionally; trainings did not).
- The give-up rule lives here and only here: a row whose lease ran out on its
  ``max_attempts``-th try is not taken again; the claim marks it ``failed`` and hands
  it to the client (:attr:`Taken.gave_up`) in the same transaction, for the client to
  fail what the row stands for (a batch job, a version). Batch used to take such a
  chunk once more and fail it in its runner; the count is the same: a row abandoned
  ``max_attempts`` times fails.
- Renew, release, finish and fail change a row only while its ``owner`` holds it
  (``running`` under that owner). A release puts it back ``pending`` as if never
  claimed (its attempt not counted: the worker was stopped, not killed by the work),
  unless the client says the try counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

#: A row's states: nobody holds it, held under a lease, then one of the last two for good.
STATUSES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class Taken:
    """What a claim got: ``row`` (the key, lease columns and the client's columns, as seen before
    the claim), this try's number and whether the row was given up instead of taken."""

    row: Row[Any]
    attempts: int
    #: The row's lease ran out on its last try: it is ``failed`` now, and :attr:`last_owner` held it last.
    gave_up: bool

    @property
    def last_owner(self) -> str | None:
        """Who held the row before this claim (for a row given up: whose lease ran out last)."""
        return self.row.lease_owner


class LeaseQueue:
    """The lease protocol over one table; see the module's docstring for its rules."""

    def __init__(
        self,
        table: Table,
        key: Sequence[str],
        *,
        max_attempts: int,
        order_by: Sequence[ColumnElement[Any]],
        columns: Sequence[ColumnElement[Any]] = (),
        joins: Callable[[Select[Any]], Select[Any]] = lambda query: query,
        where: ColumnElement[bool] | None = None,
    ) -> None:
        self.table = table
        self.key = tuple(key)
        self.max_attempts = max_attempts
        c = table.c
        self._finished_at = c.get("finished_at")
        #: The row the caller names by its key, bound as ``key_<column>``.
        self._key = and_(*(c[name] == bindparam(f"key_{name}") for name in self.key))
        self._held = self._key & (c.status == "running") & (c.lease_owner == bindparam("owner"))
        query = joins(
            select(*(c[name] for name in self.key), c.status, c.attempts, c.lease_owner, *columns)
        ).where(or_(c.status == "pending", (c.status == "running") & (c.lease_expires_at < bindparam("now"))))
        if where is not None:
            query = query.where(where)
        self._claimable = query.order_by(*order_by).limit(1)
        self._claimable_locked = self._claimable.with_for_update(of=table, skip_locked=True)
        self._any = self._claimable.with_only_columns(*(c[name] for name in self.key))
        seen = self._key & (c.status == bindparam("seen_status")) & (c.attempts == bindparam("seen_attempts"))
        self._take = (
            update(table)
            .where(seen)
            .values(
                status="running",
                lease_owner=bindparam("owner"),
                lease_expires_at=bindparam("expires"),
                attempts=c.attempts + 1,
            )
        )
        self._give_up = update(table).where(seen).values(self._ended("failed"))
        self._renew = update(table).where(self._held).values(lease_expires_at=bindparam("expires"))
        self._release = (
            update(table)
            .where(self._held)
            .values(status="pending", lease_owner=None, lease_expires_at=None, attempts=c.attempts - 1)
        )
        self._release_counted = (
            update(table).where(self._held).values(status="pending", lease_owner=None, lease_expires_at=None)
        )
        self._finish = update(table).where(self._held).values(self._ended("done"))
        self._fail = update(table).where(self._held).values(self._ended("failed"))
        self._holds = select(*(c[name] for name in self.key)).where(self._held)
        self._counts = select(c.status, func.count()).group_by(c.status)

    def _ended(self, status: str) -> dict[str, Any]:
        """An end for good: the lease cleared (its owner kept: who held it last), the time stamped if kept."""
        values: dict[str, Any] = {"status": status, "lease_expires_at": None}
        if self._finished_at is not None:
            values["finished_at"] = bindparam("now")
        return values

    def _bind(self, key: Mapping[str, Any], **more: Any) -> dict[str, Any]:
        return {**{f"key_{name}": key[name] for name in self.key}, **more}

    def key_of(self, row: Row[Any]) -> dict[str, Any]:
        """A claimed row's key, as the other methods take it."""
        return {name: row._mapping[name] for name in self.key}

    def _stamp(self, now: datetime) -> dict[str, Any]:
        """``now`` for an end stamped in ``finished_at``: an UPDATE refuses parameters it has no use for."""
        return {"now": now} if self._finished_at is not None else {}

    def any_claimable(self, connection: Connection, now: datetime) -> bool:
        """Whether a claim now would find a row: a look without a write lock, as idle pollers take."""
        return connection.execute(self._any, {"now": now}).first() is not None

    def claim(self, connection: Connection, owner: str, now: datetime, expires: datetime) -> Taken | None:
        """Take the oldest claimable row under ``owner``'s lease until ``expires``; None if there is none.

        A row given up (see the module's docstring) is returned as such: the caller fails its
        work in this transaction, then may claim again.
        """
        postgres = connection.dialect.name == "postgresql"
        while True:
            row = connection.execute(
                self._claimable_locked if postgres else self._claimable, {"now": now}
            ).first()
            if row is None:
                return None
            seen = self._bind(self.key_of(row), seen_status=row.status, seen_attempts=row.attempts)
            if row.status == "running" and row.attempts >= self.max_attempts:
                if connection.execute(self._give_up, {**seen, **self._stamp(now)}).rowcount:
                    return Taken(row, row.attempts, gave_up=True)
                continue  # changed meanwhile (cannot happen under the lock): look again
            if connection.execute(self._take, {**seen, "owner": owner, "expires": expires}).rowcount:
                return Taken(row, row.attempts + 1, gave_up=False)

    def renew(self, connection: Connection, key: Mapping[str, Any], owner: str, expires: datetime) -> bool:
        """Extend the lease to ``expires``, only while ``owner`` holds the row."""
        return bool(connection.execute(self._renew, self._bind(key, owner=owner, expires=expires)).rowcount)

    def release(
        self, connection: Connection, key: Mapping[str, Any], owner: str, counted: bool = False
    ) -> bool:
        """Give a held row back: ``pending`` again at once, its try not counted unless ``counted``."""
        statement = self._release_counted if counted else self._release
        return bool(connection.execute(statement, self._bind(key, owner=owner)).rowcount)

    def holds(self, connection: Connection, key: Mapping[str, Any], owner: str) -> bool:
        """Whether ``owner`` still holds the row (a look: only :meth:`finish` decides)."""
        return connection.execute(self._holds, self._bind(key, owner=owner)).first() is not None

    def finish(self, connection: Connection, key: Mapping[str, Any], owner: str, now: datetime) -> bool:
        """Mark the row ``done``, only while ``owner`` holds it; the caller rolls back its work if not."""
        return bool(
            connection.execute(self._finish, self._bind(key, owner=owner, **self._stamp(now))).rowcount
        )

    def fail(self, connection: Connection, key: Mapping[str, Any], owner: str, now: datetime) -> bool:
        """Mark the row ``failed``, only while ``owner`` holds it."""
        return bool(connection.execute(self._fail, self._bind(key, owner=owner, **self._stamp(now))).rowcount)

    def cancel(self, connection: Connection, where: ColumnElement[bool], now: datetime) -> int:
        """Fail the unfinished rows ``where`` says, held or not: a holder learns it at its next renewal."""
        statement = update(self.table).where(where, self.table.c.status.in_(("pending", "running")))
        return connection.execute(statement.values(self._ended("failed")), self._stamp(now)).rowcount

    def counts(self, connection: Connection) -> dict[str, int]:
        """Rows per status."""
        return {status: n for status, n in connection.execute(self._counts)}


@dataclass(frozen=True)
class Held:
    """A row of a queue under ``owner``'s lease, as the code that completes its work checks it."""

    queue: LeaseQueue
    key: Mapping[str, Any]
    owner: str

    def holds(self, connection: Connection) -> bool:
        return self.queue.holds(connection, self.key, self.owner)

    def finish(self, connection: Connection, now: datetime) -> bool:
        return self.queue.finish(connection, self.key, self.owner, now)

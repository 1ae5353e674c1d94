"""The registry's history: an append-only, hash-chained table of every change to versions and aliases.

Each change writes its event in its own transaction (no change without its event, no event
without its change). Each event's ``hash`` is the sha256 of a canonical encoding of the event
and of the previous event's hash, so an event edited, removed or inserted behind the
application's back breaks the chain at that sequence number (:func:`verify`). Nothing updates
or deletes a row: a trigger refuses it on both databases (migration 0011).

Appends are serialised: on PostgreSQL a transaction-scoped advisory lock, taken just before the
last event is read, so two writers never both chain onto the same event (and taken last, once the
change's rows are written, so it never waits on a lock of its own transaction's rows); on SQLite every
writing transaction is ``BEGIN IMMEDIATE`` already. Who and which request come from the context
variables of :mod:`coe_template.observability` (set by the API for each request, by the CLI for
its commands): the registry's methods need no extra arguments for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Index, Integer, Row, String, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from coe_template.errors import InvalidInput
from coe_template.observability import current_actor, current_request_id
from coe_template.registry.schema import Base, utc, utcnow

#: What an event records (``version.deleted`` is reserved: nothing deletes a version yet).
ACTIONS = (
    "version.created",
    "version.trained",
    "version.failed",
    "version.archived",
    "version.deleted",
    "alias.set",
    "alias.moved",
    "alias.removed",
    "alias.rolled_back",
)
#: The actions that change where an alias points (its history).
ALIAS_ACTIONS = ("alias.set", "alias.moved", "alias.removed", "alias.rolled_back")
#: The longest reason a promotion or a rollback may give (the spec's ``Reason`` declares the same).
REASON_LENGTH = 500
#: Who changed the registry when no request and no command says: a runner, a worker.
SYSTEM = "system"
#: The first event's ``previous_hash``.
GENESIS = "0" * 64
#: PostgreSQL advisory lock serialising appends (any fixed number will do): "coeh".
_APPEND_LOCK = 0x636F6568


class RegistryEvent(Base):
    __tablename__ = "registry_events"
    __table_args__ = (Index("ix_registry_events_model", "model", "sequence"),)

    #: 1, 2, 3, … with no gap: given under the append lock, so a missing row shows too.
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    #: A key's id (the first 12 hex digits of its sha256), ``cli``, ``anonymous`` or ``system``: never a key.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(63))
    alias: Mapped[str | None] = mapped_column(String(63))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    request_id: Mapped[str | None] = mapped_column(String(200))
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


_events = RegistryEvent.__table__
#: The columns the hash covers, in their canonical order (everything but the hash itself).
HASHED = (
    "sequence",
    "at",
    "actor",
    "action",
    "model",
    "alias",
    "from_version",
    "to_version",
    "reason",
    "request_id",
    "previous_hash",
)


@dataclass(frozen=True)
class Event:
    """One event as the API and the CLI show it."""

    sequence: int
    at: datetime
    actor: str
    action: str
    model: str
    alias: str | None
    from_version: int | None
    to_version: int | None
    reason: str | None
    request_id: str | None
    previous_hash: str
    hash: str

    @classmethod
    def of(cls, row: object) -> Event:
        values = {name: getattr(row, name) for name in (*HASHED, "hash")}
        values["at"] = utc(values["at"])
        return cls(**values)


def canonical_time(moment: datetime) -> str:
    """Microseconds in UTC: what both databases keep, so the hash survives the round trip."""
    return utc(moment).isoformat(timespec="microseconds")


def event_hash(values: dict[str, object]) -> str:
    """sha256 over the canonical JSON of the hashed columns (sorted keys, no spaces, UTF-8)."""
    document = {name: values[name] for name in HASHED}
    document["at"] = canonical_time(values["at"])  # type: ignore[arg-type]
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def reason_missing(what: str) -> InvalidInput:
    return InvalidInput(f"{what} needs a reason (1 to {REASON_LENGTH} characters): say why")


def check_reason(reason: str | None, required: bool, what: str) -> str | None:
    """A reason stripped of surrounding spaces; :class:`InvalidInput` when required and missing, or too long."""
    reason = (reason or "").strip() or None
    if reason is None and required:
        raise reason_missing(what)
    if reason is not None and len(reason) > REASON_LENGTH:
        raise InvalidInput(f"the reason is {len(reason)} characters long, more than {REASON_LENGTH}")
    return reason


def actor() -> str:
    """Who is changing the registry: the context's actor, else ``anonymous`` in a request, else ``system``."""
    return current_actor() or ("anonymous" if current_request_id() is not None else SYSTEM)


def append(
    connection: Connection,
    action: str,
    model: str,
    *,
    alias: str | None = None,
    from_version: int | None = None,
    to_version: int | None = None,
    reason: str | None = None,
) -> Event:
    """Write one event in ``connection``'s transaction, chained onto the last one."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK)))
    last = connection.execute(
        select(_events.c.sequence, _events.c.hash).order_by(_events.c.sequence.desc()).limit(1)
    ).first()
    values: dict[str, object] = {
        "sequence": 1 if last is None else last.sequence + 1,
        "at": utcnow(),
        "actor": actor(),
        "action": action,
        "model": model,
        "alias": alias,
        "from_version": from_version,
        "to_version": to_version,
        "reason": reason,
        "request_id": current_request_id(),
        "previous_hash": GENESIS if last is None else last.hash,
    }
    values["hash"] = event_hash(values)
    connection.execute(insert(_events).values(**values))
    return Event(**values)  # type: ignore[arg-type]


def record_event(session: Session, action: str, model: str, **values: Any) -> Event:
    """:func:`append` in an ORM session's transaction, its pending changes written first.

    So the append lock is always the last lock a transaction takes (its rows are locked already):
    two writers never each hold what the other waits for.
    """
    session.flush()
    return append(session.connection(), action, model, **values)


@dataclass(frozen=True)
class Verified:
    """What walking the chain found: how many events, and the first one that breaks it (None: intact)."""

    count: int
    broken_at: int | None = None
    why: str = ""


def verify(connection: Connection, page: int = 1000) -> Verified:
    """Walk every event in order, recomputing each hash; stop at the first that does not hold."""
    previous, expected, count = GENESIS, 1, 0
    for row in _walk(connection, page):
        if row.sequence != expected:
            return Verified(count, expected, f"event {expected} is missing (the next is {row.sequence})")
        if row.previous_hash != previous:
            return Verified(count, row.sequence, "its previous_hash is not the hash of the event before it")
        if event_hash(row._asdict()) != row.hash:
            return Verified(count, row.sequence, "its hash does not match its contents")
        previous, expected, count = row.hash, expected + 1, count + 1
    return Verified(count)


def _walk(connection: Connection, page: int) -> Iterator[Row[Any]]:
    after = 0
    while True:
        rows = connection.execute(
            select(_events).where(_events.c.sequence > after).order_by(_events.c.sequence).limit(page)
        ).all()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].sequence

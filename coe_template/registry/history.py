"""Reading the registry's history (:mod:`coe_template.registry.events`), and the changes decided from it.

Promotions and rollbacks through the API and the CLI go through :func:`promote` and
:func:`rollback` here, so the rule on reasons and the choice of the version to go back to
are written once for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from coe_template.errors import Conflict, InvalidInput
from coe_template.registry.db import reader
from coe_template.registry.events import ALIAS_ACTIONS, Event, RegistryEvent, Verified, check_reason, verify
from coe_template.registry.records import AliasChange, AliasNotFound, ModelNotFound
from coe_template.registry.registry import PRODUCTION, Registry
from coe_template.registry.schema import Model, utcnow

_events = RegistryEvent.__table__


def _check_model(registry: Registry, name: str) -> None:
    with reader(registry.engine).begin() as connection:
        if connection.execute(select(Model.id).where(Model.name == name)).first() is None:
            raise ModelNotFound(name)


def verify_history(registry: Registry) -> Verified:
    """Walk the whole chain (``coe-template events verify``)."""
    with reader(registry.engine).begin() as connection:
        return verify(connection)


def list_events(
    registry: Registry,
    name: str,
    action: str | None = None,
    since: datetime | None = None,
    after: int = 0,
    limit: int = 20,
) -> tuple[list[Event], int | None]:
    """Model ``name``'s events after sequence ``after``, oldest first; also the next page's cursor, if any."""
    _check_model(registry, name)
    query = select(_events).where(_events.c.model == name, _events.c.sequence > after)
    if action is not None:
        query = query.where(_events.c.action == action)
    if since is not None:
        query = query.where(_events.c.at >= since)
    with reader(registry.engine).begin() as connection:
        rows = connection.execute(query.order_by(_events.c.sequence).limit(limit + 1)).all()
    page = [Event.of(row) for row in rows[:limit]]
    return page, (page[-1].sequence if len(rows) > limit else None)


def alias_history(registry: Registry, name: str, alias: str) -> list[Event]:
    """Every move of ``alias`` of model ``name``, oldest first; :class:`AliasNotFound` if it never had one."""
    _check_model(registry, name)
    with reader(registry.engine).begin() as connection:
        rows = connection.execute(
            select(_events)
            .where(_events.c.model == name, _events.c.alias == alias, _events.c.action.in_(ALIAS_ACTIONS))
            .order_by(_events.c.sequence)
        ).all()
    if not rows:
        raise AliasNotFound(name, alias)
    return [Event.of(row) for row in rows]


def alias_at(registry: Registry, name: str, alias: str, at: datetime) -> int:
    """The version ``alias`` pointed at, at time ``at``, from the history.

    :class:`InvalidInput` for a time still to come; :class:`AliasNotFound` before the alias
    existed (as far as the history knows) or while it was deleted.
    """
    if at > utcnow():
        raise InvalidInput(f"at={at.isoformat()} is in the future: the history only knows the past")
    _check_model(registry, name)
    with reader(registry.engine).begin() as connection:
        last = connection.execute(
            select(_events.c.to_version, _events.c.action)
            .where(
                _events.c.model == name,
                _events.c.alias == alias,
                _events.c.action.in_(ALIAS_ACTIONS),
                _events.c.at <= at,
            )
            .order_by(_events.c.sequence.desc())
            .limit(1)
        ).first()
    if last is None or last.action == "alias.removed" or last.to_version is None:
        raise AliasNotFound(name, alias)
    return int(last.to_version)


def promote(registry: Registry, name: str, alias: str, number: int, reason: str | None) -> AliasChange:
    """Point ``alias`` at version ``number``, saying why: a reason is required to move ``production``
    (to point it at another version; a promotion that changes nothing needs none)."""
    reason = check_reason(reason, False, f"moving {alias!r}")
    return registry.set_alias(
        name, alias, number, reason, why=f"moving {alias!r}" if alias == PRODUCTION else ""
    )


@dataclass(frozen=True)
class Rollback:
    """Where the alias pointed before the rollback, and where it points now."""

    alias: str
    was: int
    now: int


def rollback_target(registry: Registry, name: str, alias: str, current: int) -> int:
    """The version ``alias`` served before its last move that is still ready.

    The alias's moves are read newest first: the first version it pointed at, other than
    ``current``, that is still ready is the one. Not the newest ready version older than
    the current one: a promotion may have skipped versions, or gone back already.
    """
    ready = _ready_versions(registry, name)
    for event in reversed(alias_history(registry, name, alias)):
        for candidate in (event.from_version, event.to_version):
            if candidate is not None and candidate != current and candidate in ready:
                return candidate
    raise Conflict(
        f"{alias!r} of {name!r} has served no other version that is still ready: nothing to roll back to"
    )


def _ready_versions(registry: Registry, name: str) -> set[int]:
    found: set[int] = set()
    after: int | None = 0
    while after is not None:
        page, after = registry.list_versions(name, status="ready", after=after, limit=100)
        found.update(v.version for v in page)
    return found


def rollback(
    registry: Registry, name: str, alias: str, reason: str | None, to: int | None = None
) -> Rollback:
    """Point ``alias`` back at what it served before (or at ``to``), recorded as a rollback with its reason."""
    reason = check_reason(reason, True, f"rolling back {alias!r}")
    current = registry.get_alias(name, alias)
    target = rollback_target(registry, name, alias, current) if to is None else to
    if target == current:
        raise Conflict(f"{alias!r} of {name!r} already points at version {current}: nothing to roll back")
    registry.set_alias(name, alias, target, reason=reason, rollback=True)
    return Rollback(alias, was=current, now=target)

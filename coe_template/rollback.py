"""Rolling a model's ``production`` back: which version it goes back to, decided once for every caller."""

from __future__ import annotations

from dataclasses import dataclass

from coe_template.errors import Conflict
from coe_template.registry import PRODUCTION, Registry

#: Versions read per query while looking for the one to go back to.
_PAGE = 100


@dataclass(frozen=True)
class Rollback:
    """Where ``production`` pointed before, and where it points now."""

    was: int
    now: int


def previous_ready(registry: Registry, name: str, before: int) -> int:
    """The newest ready version older than ``before`` (archived and failed ones are skipped)."""
    found: int | None = None
    after: int | None = 0
    while after is not None:
        page, after = registry.list_versions(name, status="ready", after=after, limit=_PAGE)
        older = [v.version for v in page if v.version < before]
        if older:
            found = older[-1]
        if len(older) < len(page):  # oldest first: the rest are newer still
            break
    if found is None:
        raise Conflict(f"{name} has no ready version older than {before} to roll back to")
    return found


def rollback(registry: Registry, name: str, to: int | None = None) -> Rollback:
    """Point ``production`` of model ``name`` at ``to``, by default the newest ready version before it."""
    current = registry.get_alias(name, PRODUCTION)
    target = previous_ready(registry, name, current) if to is None else to
    registry.set_alias(name, PRODUCTION, target)
    return Rollback(was=current, now=target)

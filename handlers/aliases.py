"""``/models/{model-name}/aliases``: promote, roll back, name versions, and read where they pointed."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus

from coe_template.errors import InvalidInput
from coe_template.registry import AliasChange
from coe_template.registry.history import alias_at, alias_history, promote, rollback
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.aliases import alias_schema, rollback_schema
from handlers.schemas.events import event_schema


@enveloped()
def search(model_name: str) -> dict:
    return {"aliases": services().registry.list_aliases(model_name)}


@enveloped()
def get(model_name: str, alias: str, at: str | None = None) -> dict:
    registry = services().registry
    if at is None:
        return alias_schema.dump(AliasChange(alias, registry.get_alias(model_name, alias)))
    return alias_schema.dump(AliasChange(alias, alias_at(registry, model_name, alias, parse_time("at", at))))


@enveloped()
def update(model_name: str, alias: str, body: dict) -> dict:
    return alias_schema.dump(
        promote(services().registry, model_name, alias, body["version"], body.get("reason"))
    )


@enveloped()
def delete(model_name: str, alias: str) -> dict:
    return alias_schema.dump(services().registry.delete_alias(model_name, alias))


@enveloped()
def history(model_name: str, alias: str) -> dict:
    return {"events": event_schema.dump(alias_history(services().registry, model_name, alias), many=True)}


@enveloped(HTTPStatus.CREATED)
def rollbacks(model_name: str, alias: str, body: dict) -> tuple[dict, dict]:
    """Point the alias back at what it served before its last move (or at ``to_version``)."""
    done = rollback(services().registry, model_name, alias, body["reason"], body.get("to_version"))
    return rollback_schema.dump(done), {"Location": f"/models/{model_name}/aliases/{alias}"}


def parse_time(name: str, value: str) -> datetime:
    """An RFC 3339 time with its offset; :class:`InvalidInput` naming the parameter otherwise."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        raise InvalidInput(f"{name}={value[:64]!r} is not an RFC 3339 time such as 2026-12-08T02:30:00Z")
    return moment

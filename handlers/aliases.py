"""``/models/{model-name}/aliases``: promote, roll back, and name versions."""

from __future__ import annotations

from coe_template.registry import AliasChange
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.aliases import alias_schema


@enveloped()
def search(model_name: str) -> dict:
    return {"aliases": services().registry.list_aliases(model_name)}


@enveloped()
def get(model_name: str, alias: str) -> dict:
    return alias_schema.dump(AliasChange(alias, services().registry.get_alias(model_name, alias)))


@enveloped()
def update(model_name: str, alias: str, body: dict) -> dict:
    return alias_schema.dump(services().registry.set_alias(model_name, alias, body["version"]))


@enveloped()
def delete(model_name: str, alias: str) -> dict:
    return alias_schema.dump(services().registry.delete_alias(model_name, alias))

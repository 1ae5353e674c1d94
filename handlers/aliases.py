"""``/models/{model-name}/aliases``: promote, roll back, and name versions."""

from __future__ import annotations

from handlers.context import services
from handlers.envelope import enveloped


@enveloped()
def search(model_name: str) -> dict:
    return {"aliases": services().registry.list_aliases(model_name)}


@enveloped()
def get(model_name: str, alias: str) -> dict:
    return {"alias": alias, "version": services().registry.get_alias(model_name, alias)}


@enveloped()
def update(model_name: str, alias: str, body: dict) -> dict:
    return services().registry.set_alias(model_name, alias, body["version"])


@enveloped()
def delete(model_name: str, alias: str) -> dict:
    return services().registry.delete_alias(model_name, alias)

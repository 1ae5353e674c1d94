"""``/models``: the registry's models."""

from handlers.context import services
from handlers.envelope import enveloped


@enveloped()
def search() -> dict:
    return {"models": services().registry.list_models()}


@enveloped()
def get(model_name: str) -> dict:
    return {"model": services().registry.get_model(model_name)}

"""``/models``: the registry's models."""

from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.models import model_schema


@enveloped()
def search() -> dict:
    return {"models": model_schema.dump(services().registry.list_models(), many=True)}


@enveloped()
def get(model_name: str) -> dict:
    return {"model": model_schema.dump(services().registry.get_model(model_name))}

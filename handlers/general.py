"""``GET /``: the health check."""

from handlers.context import serving
from handlers.envelope import enveloped
from handlers.schemas.served import model_ref_schema


@enveloped()
def health() -> dict:
    return {"model": model_ref_schema.dump(serving())}

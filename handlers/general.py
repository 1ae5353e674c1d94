"""``GET /``: the health check."""

from handlers.context import serving
from handlers.envelope import enveloped


@enveloped()
def health() -> dict:
    return {"model": serving().ref()}

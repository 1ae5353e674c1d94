"""``GET /args`` and ``GET /args/{arg}``: the serving model's training arguments."""

from handlers.context import serving
from handlers.envelope import enveloped


@enveloped()
def search() -> dict:
    return {"args": serving().artifacts.args}


@enveloped()
def get(arg: str) -> dict:
    return {"args": {arg: serving().artifacts.arg(arg)}}

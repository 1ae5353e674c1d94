"""THE FRAMEWORK'S CEILING WITHOUT WSGI: a Connexion 3 AsyncApp whose handler does no work.

The same spec, routing and body validation as ``bench/noop_app.py`` (the FlaskApp no-op), but
the handler is a coroutine run in the event loop: no Flask, no a2wsgi. What the service, whose
computing operations run in the loop (``x-coe-in-loop``) but through Flask, is measured against.

    gunicorn -k uvicorn_worker.UvicornWorker bench.noop_async_app:app
"""

from __future__ import annotations

import copy
from typing import Any

from connexion import AsyncApp

from bench.noop_app import SPEC as FLASK_SPEC

SPEC: Any = copy.deepcopy(FLASK_SPEC)
SPEC["info"]["title"] = "no-op ceiling (AsyncApp)"
SPEC["paths"]["/predictions"]["post"]["operationId"] = "bench.noop_async_app.create"


async def create(body: dict) -> dict:
    return {"data": None}


app = AsyncApp(__name__)
app.add_api(SPEC)

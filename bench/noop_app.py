"""THE CEILING, not the service: a Connexion 3 FlaskApp whose handler does no work.

The same framework, worker class and body parsing as the service, with nothing of
ours on the path: what ``bench/serving.py`` measures the service against.

    gunicorn -k uvicorn_worker.UvicornWorker bench.noop_app:app
"""

from __future__ import annotations

from connexion import FlaskApp

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "no-op ceiling", "version": "1"},
    "paths": {
        "/predictions": {
            "post": {
                "operationId": "bench.noop_app.create",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {"200": {"description": "nothing was done"}},
            }
        }
    },
}


def create(body: dict) -> dict:
    return {"data": None}


app = FlaskApp(__name__)
app.add_api(SPEC)

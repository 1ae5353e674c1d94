"""What each layer of the request path costs alone, in process: µs per request around a no-op ASGI app.

    python bench/middleware.py [--requests 20000]

Each of the service's own ASGI middlewares (and Connexion's last layer, a2wsgi's thread pool,
against :class:`handlers.inloop.InLoop`) wraps an app that answers 200 with a small body; a
request like a one-text prediction (headers, a 60-byte JSON body, the routing record Connexion
leaves in the scope) goes through it on one event loop. The figure is the layer's time minus the
bare app's: best of five rounds. What it does not include: the HTTP parsing (uvicorn), Connexion's
own middlewares (routing, security, validation) and Flask.

Then the whole request path, in process (no HTTP): CPU µs per one-text ``POST /predictions``
(``time.process_time``, so a2wsgi's threads count too) through the service with its computing
operations in the loop, the same service with every operation through a2wsgi's pool, the no-op
FlaskApp (``bench/noop_app.py``) and the no-op AsyncApp (``bench/noop_async_app.py``); the
model is trained on the bundled data, ``gc.freeze()`` as gunicorn's config does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from a2wsgi import WSGIMiddleware  # noqa: E402
from connexion.middleware.abstract import ROUTING_CONTEXT  # noqa: E402
from starlette.types import Receive, Scope, Send  # noqa: E402

from handlers import inloop  # noqa: E402
from handlers.app import CORS_EXPOSED, CORS_HEADERS, SPEC_DIR  # noqa: E402
from handlers.inloop import InLoop  # noqa: E402
from handlers.middleware.cors import CORS  # noqa: E402
from handlers.middleware.headers import SecurityHeaders  # noqa: E402
from handlers.middleware.limits import BodyBudget, BodyDeadline, BodySizeLimit, InFlightLimit  # noqa: E402
from handlers.middleware.observe import Observe, Routes  # noqa: E402
from handlers.middleware.request_id import RequestId  # noqa: E402
from handlers.middleware.routing import UnroutedNotFound  # noqa: E402
from handlers.security import KeyGuard  # noqa: E402

BODY = b'{"texts":[{"text":"ML applied to image classification."}]}'
OPERATION = "handlers.predictions.create"


async def noop(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    assert message["type"] == "http.request"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"data":null}'})


def noop_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"data":null}']


def scope() -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predictions",
        "raw_path": b"/predictions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"origin", b"https://example.org"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {ROUTING_CONTEXT: {"operation_id": OPERATION}},
    }


LAYERS: dict[str, Callable[[Any], Any]] = {
    "bare no-op app": lambda app: app,
    "RequestId": RequestId,
    "Observe (metrics + access line)": lambda app: Observe(app, Routes(SPEC_DIR / "spec.yaml")),
    "Observe (metrics, no access line)": lambda app: Observe(
        app, Routes(SPEC_DIR / "spec.yaml"), access=False
    ),
    "SecurityHeaders": SecurityHeaders,
    "CORS (origins named)": lambda app: CORS(
        app,
        allow_origins=["https://example.org"],
        allow_methods=["GET", "PUT", "POST", "DELETE"],
        allow_headers=list(CORS_HEADERS),
        expose_headers=list(CORS_EXPOSED),
        max_age=600,
    ),
    "KeyGuard (reads open)": KeyGuard,
    "BodySizeLimit": lambda app: BodySizeLimit(app, 1 << 20, 50 << 20, 8 << 20, ("/batch-predictions",)),
    "BodyDeadline": lambda app: BodyDeadline(app, 30, 1000, BodyBudget(100 << 20)),
    "InFlightLimit": lambda app: InFlightLimit(app, 256, ("/livez",)),
    "UnroutedNotFound": UnroutedNotFound,
}
#: Connexion's last layer: the app behind it is WSGI (a no-op), so these are measured against it.
LAST_LAYERS: dict[str, Callable[[], Any]] = {
    "a2wsgi pool (stock last layer)": lambda: WSGIMiddleware(cast(Any, noop_wsgi)),
    "InLoop (x-coe-in-loop)": lambda: InLoop(
        noop_wsgi, cast(Any, WSGIMiddleware(cast(Any, noop_wsgi))), frozenset({OPERATION})
    ),
}


async def per_request_us(app: Any, requests: int, clock: Callable[[], float] = time.perf_counter) -> float:
    statuses: set[int] = set()

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    rounds = []
    for _ in range(5):
        started = clock()
        for _ in range(requests // 5):
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}

            await app(scope(), receive, send)
        rounds.append((clock() - started) / (requests // 5) * 1e6)
    assert statuses == {200}, statuses
    return min(rounds)


def whole_apps() -> tuple[Any, Any, Any]:
    """The service (on a fresh registry with a model trained on the bundled data) and the two no-ops."""
    from coe_template.model.args import load_args
    from coe_template.model.data import bundled_dataset_path, load_dataset
    from coe_template.model.train import train
    from coe_template.registry import PRODUCTION, Registry

    store = Path(tempfile.mkdtemp(prefix="bench-middleware-"))
    registry = Registry.open(f"sqlite:///{store}/registry.db", store, upgrade=True)
    registry.ensure_model("project-tagger")
    registry.register(
        "project-tagger",
        train(load_dataset(bundled_dataset_path()), load_args(ROOT / "config" / "args.json")),
    )
    registry.set_alias("project-tagger", PRODUCTION, 1)
    registry.engine.dispose()
    os.environ["COE_MODEL_STORE"] = str(store)
    from bench.noop_app import app as noop_flask
    from bench.noop_async_app import app as noop_async
    from handlers.app import create_app

    service = create_app()
    logging_off()
    return service, noop_flask, noop_async


async def main(requests: int) -> None:
    bare = await per_request_us(noop, requests)
    print(f"{'layer':<36}{'µs/request':>12}")
    print(f"{'bare no-op app':<36}{bare:>12.1f}  (the base: subtracted below)")
    logging_off()
    for name, wrap in list(LAYERS.items())[1:]:
        print(f"{name:<36}{await per_request_us(wrap(noop), requests) - bare:>12.1f}")
    for name, make in LAST_LAYERS.items():
        print(f"{name:<36}{await per_request_us(make(), requests) - bare:>12.1f}  (with a no-op WSGI app)")

    service, noop_flask, noop_async = whole_apps()
    layer = service.app.extensions[inloop.EXTENSION]
    marked = layer.operations
    gc.freeze()
    print(f"\n{'whole request path, 1 text':<36}{'CPU µs/request':>15}")
    figures = {}
    for name, app, operations in (
        ("service, computing ops in loop", service, marked),
        ("service, all through a2wsgi", service, frozenset()),
        ("no-op FlaskApp", noop_flask, None),
        ("no-op AsyncApp", noop_async, None),
    ):
        if operations is not None:
            layer.operations = operations
        await per_request_us(app, requests // 20, time.process_time)  # warm up
        figures[name] = await per_request_us(app, requests // 4, time.process_time)
        print(f"{name:<36}{figures[name]:>15.0f}")
    layer.operations = marked
    service_us = figures["service, computing ops in loop"]
    for other in list(figures)[1:]:
        print(f"{other} / service (CPU per request): {figures[other] / service_us:.2f}")


def logging_off() -> None:
    """The access line formatted and handled as the service does, but written nowhere (not to the terminal)."""
    import logging

    from config.logging import configure

    configure("json", "INFO", frozenset())
    for handler in logging.getLogger().handlers:
        handler.stream = open("/dev/null", "w")  # type: ignore[attr-defined]  # noqa: SIM115


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    asyncio.run(main(parser.parse_args().requests))

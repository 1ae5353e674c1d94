"""What each layer of the request path costs alone, in process: µs per request around a no-op ASGI app.

    python bench/middleware.py [--requests 20000]

Each of the service's own ASGI middlewares (and Connexion's last layer, a2wsgi's thread pool,
against :class:`handlers.inloop.InLoop`) wraps an app that answers 200 with a small body; a
request like a one-text prediction (headers, a 60-byte JSON body, the routing record Connexion
leaves in the scope) goes through it on one event loop. The figure is the layer's time minus the
bare app's: best of five rounds. What it does not include: the HTTP parsing (uvicorn), Connexion's
own middlewares (routing, security, validation) and Flask.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from a2wsgi import WSGIMiddleware  # noqa: E402
from connexion.middleware.abstract import ROUTING_CONTEXT  # noqa: E402
from starlette.types import Receive, Scope, Send  # noqa: E402

from handlers.app import CORS_EXPOSED, CORS_HEADERS, SPEC_DIR  # noqa: E402
from handlers.cors import CORS  # noqa: E402
from handlers.headers import SecurityHeaders  # noqa: E402
from handlers.inloop import InLoop  # noqa: E402
from handlers.limits import BodyBudget, BodyDeadline, BodySizeLimit, InFlightLimit  # noqa: E402
from handlers.observe import Observe, Routes  # noqa: E402
from handlers.request_id import RequestId  # noqa: E402
from handlers.routing import UnroutedNotFound  # noqa: E402
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
    "BodySizeLimit": lambda app: BodySizeLimit(app, 1 << 20, 50 << 20, ("/batch-predictions",)),
    "BodyDeadline": lambda app: BodyDeadline(app, 30, 1000, BodyBudget(100 << 20)),
    "InFlightLimit": lambda app: InFlightLimit(app, 256, ("/livez",)),
    "UnroutedNotFound": UnroutedNotFound,
}
#: Connexion's last layer: the app behind it is WSGI (a no-op), so these are measured against it.
LAST_LAYERS: dict[str, Callable[[], Any]] = {
    "a2wsgi pool (stock last layer)": lambda: WSGIMiddleware(noop_wsgi),
    "InLoop (x-coe-in-loop)": lambda: InLoop(noop_wsgi, WSGIMiddleware(noop_wsgi), frozenset({OPERATION})),
}


async def per_request_us(app: Any, requests: int) -> float:
    async def send(_message: Any) -> None:
        pass

    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(requests // 5):
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}

            await app(scope(), receive, send)
        rounds.append((time.perf_counter() - started) / (requests // 5) * 1e6)
    return min(rounds)


async def main(requests: int) -> None:
    bare = await per_request_us(noop, requests)
    print(f"{'layer':<36}{'µs/request':>12}")
    print(f"{'bare no-op app':<36}{bare:>12.1f}  (the base: subtracted below)")
    logging_off()
    for name, wrap in list(LAYERS.items())[1:]:
        print(f"{name:<36}{await per_request_us(wrap(noop), requests) - bare:>12.1f}")
    for name, make in LAST_LAYERS.items():
        print(f"{name:<36}{await per_request_us(make(), requests) - bare:>12.1f}  (with a no-op WSGI app)")


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

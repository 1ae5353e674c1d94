"""Operations that only compute run their Flask handler in the event loop's thread; the rest in a2wsgi's pool.

Connexion's ``FlaskApp`` reaches Flask through ``a2wsgi.WSGIMiddleware``: every request
is handed to one of its 10 threads, and back to the loop for the body, for
``start_response`` and for each part of the answer. For an operation that only
computes (a prediction with the served version, ``GET /``, ``/livez``) those hops
cost more than the work. An operation marked ``x-coe-in-loop: true`` in
``openapi/spec.yaml`` (the one place the line is drawn, read once when the app is
built) is called here directly: its body is already in memory (``handlers.middleware.limits.BodyDeadline``
read it within its deadline and budget, and Connexion's validation read it again), so
it is collected from ``receive`` without waiting, Flask runs in the loop's thread, and
the collected answer is sent. A marked operation with a large body (over :data:`MAX_BODY_BYTES`)
takes the stock path: its work would hold the loop too long.

What can wait on the database, the disk or another process must never be marked: the
loop would stop for everyone while it waits (``tests/handlers/test_inloop.py`` runs every
marked operation with the database refused and fails if one touches it). Those
operations keep the stock path, so a hung database still cannot stall predictions.
"""

from __future__ import annotations

import contextvars
import io
from pathlib import Path
from typing import Any

import yaml
from a2wsgi.wsgi import build_environ
from connexion import FlaskApp
from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The spec extension that marks an operation as computing only (no database, disk or process waits).
MARK = "x-coe-in-loop"
#: Bodies up to this size are answered in the loop; a larger one (hundreds of texts to predict) would
#: hold the loop for tens of ms, delaying every other connection, header deadlines and a graceful stop,
#: so it goes to the pool like any other request. 64 texts of 500 characters fit.
MAX_BODY_BYTES = 48 * 1024
#: Where the app keeps its :class:`InLoop` (tests compare its answers with the stock path's).
EXTENSION = "coe_template.inloop"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def marked_operations(spec_path: Path, package: str = "handlers") -> frozenset[str]:
    """The resolved ids (``handlers.predictions.create``) of the operations the spec marks with :data:`MARK`."""
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    return frozenset(
        f"{package}.{operation['operationId']}"
        for item in spec.get("paths", {}).values()
        for method, operation in item.items()
        if method in _METHODS and operation.get(MARK) is True
    )


class InLoop:
    """The last ASGI layer: marked operations called in the loop's thread, the others passed to ``pool``."""

    def __init__(self, wsgi_app: Any, pool: ASGIApp, operations: frozenset[str]) -> None:
        self.wsgi_app = wsgi_app
        self.pool = pool  # a2wsgi.WSGIMiddleware: the stock path
        self.operations = operations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routing = scope.get("extensions", {}).get(ROUTING_CONTEXT) if scope["type"] == "http" else None
        if (
            routing is None
            or routing.get("operation_id") not in self.operations
            or _declared_size(scope) > MAX_BODY_BYTES
        ):
            await self.pool(scope, receive, send)
            return
        chunks = []
        while True:  # already buffered upstream: no wait here
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        start, parts = contextvars.copy_context().run(self._call, scope, body)
        await send(start)
        await send({"type": "http.response.body", "body": b"".join(parts)})

    def _call(self, scope: Scope, body: bytes) -> tuple[Message, list[bytes]]:
        """Flask, in this thread, in a copy of the request's context (as a2wsgi's threads get one).

        An exception propagates before anything is sent (Flask re-raises: ``PROPAGATE_EXCEPTIONS``),
        so Connexion's exception middleware answers it with a problem, as on the stock path.
        """
        started: list[Message] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.append(
                {
                    "type": "http.response.start",
                    "status": int(status.split(" ", 1)[0]),
                    "headers": [
                        (name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
                        for name, value in headers
                    ],
                }
            )
            return parts.append

        parts: list[bytes] = []
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        iterable = self.wsgi_app(environ, start_response)
        try:
            parts.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return started[-1], parts


def _declared_size(scope: Scope) -> int:
    """The body's Content-Length (``handlers.middleware.limits.BodySizeLimit`` has checked it is a number), or 0."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
    return 0


def install(app: FlaskApp, spec_path: Path) -> InLoop:
    """Put :class:`InLoop` in place of the FlaskApp's last ASGI layer (Connexion offers no hook for it)."""
    asgi = app._middleware_app  # noqa: SLF001  the FlaskASGIApp that Connexion's middlewares call last
    layer = InLoop(app.app.wsgi_app, asgi.asgi_app, marked_operations(spec_path))
    asgi.asgi_app = layer
    return layer

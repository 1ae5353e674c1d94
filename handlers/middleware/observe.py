"""Each request, observed once: its metrics and its access line, written by one ASGI middleware.

The operation is the spec's ``operationId`` as Connexion's router resolved it
(never the raw path: metrics' label values stay few); a request no operation
matches counts as ``unrouted`` (Swagger UI's pages as ``docs``). A handler that
answered with a model says which through :func:`answered_with` (its thread sees
the request's context, and so the holder object set here).
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from pathlib import Path
from time import perf_counter

import yaml
from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coe_template.observability import metrics
from config.logging import ACCESS

access_log = logging.getLogger(ACCESS)

UNROUTED = "unrouted"
#: The status recorded for a request whose client left before any answer (nginx's convention).
CLIENT_CLOSED = 499
_UNROUTED = (UNROUTED, "-")
#: Served by Connexion's Swagger UI middleware, before routing: no operation, but not unrouted either.
DOCS_PATHS = ("/docs", "/openapi.json")
_DOCS = ("docs", "/docs")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_PARAM = re.compile(r"(\{[^}]+\})")


class Exchange:
    """What the handler tells the middleware about the request being served."""

    __slots__ = ("model",)

    def __init__(self) -> None:
        self.model: tuple[str, int] | None = None


_exchange: ContextVar[Exchange | None] = ContextVar("exchange", default=None)


def answered_with(name: str, version: int) -> None:
    """Name the model version that answered the current request (for its access line)."""
    exchange = _exchange.get()
    if exchange is not None:
        exchange.model = (name, version)


class Observe:
    """Inside :class:`handlers.middleware.request_id.RequestId` (its id is set), outside the exception handlers
    (the status is the one sent, errors included)."""

    def __init__(self, app: ASGIApp, routes: Routes, access: bool = True) -> None:
        self.app = app
        self.routes = routes
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Connexion's router records the operation in a copy of the scope; the copy shares this dict.
        extensions = scope.setdefault("extensions", {})
        exchange = Exchange()
        token = _exchange.set(exchange)
        status: int | None = None
        left = False  # the client closed the connection before an answer started
        start = perf_counter()

        async def receive_observed() -> Message:
            nonlocal left
            message = await receive()
            left = left or message["type"] == "http.disconnect"
            return message

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_observed, send_observed)
        finally:
            if status is None:  # nothing was answered: the client left (nginx's 499), or the server failed
                status = CLIENT_CLOSED if left else 500
            seconds = perf_counter() - start
            _exchange.reset(token)
            routing = extensions.get(ROUTING_CONTEXT)
            resolved = routing.get("operation_id") if routing else None
            if resolved:
                operation, route = self.routes.resolved(resolved)
            else:
                operation, route = self.routes.match(scope["method"], scope["path"])
            metrics.observe_request(operation, status, seconds)
            if self.access:
                self._log(scope["method"], route, operation, status, seconds, exchange.model)

    @staticmethod
    def _log(
        method: str, route: str, operation: str, status: int, seconds: float, model: tuple[str, int] | None
    ) -> None:
        duration_ms = round(seconds * 1000, 2)
        extra = {
            "method": method,
            "route": route,
            "operation": operation,
            "status": status,
            "duration_ms": duration_ms,
            "model": None,
            "model_version": None,
        }
        if model is None:
            access_log.info("%s %s %s %d %.2fms", method, route, operation, status, duration_ms, extra=extra)
        else:
            extra["model"], extra["model_version"] = model
            access_log.info(
                "%s %s %s %d %.2fms model=%s/%d",
                method,
                route,
                operation,
                status,
                duration_ms,
                *model,
                extra=extra,
            )


class Routes:
    """The spec's operations: each one's operationId and path template, by Connexion's resolved id,
    and by method and path for the requests refused before Connexion's router saw them (a body over
    the size limit): rare, so matched only then."""

    def __init__(self, spec_path: Path, package: str = "handlers") -> None:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        self.by_resolved_id: dict[str, tuple[str, str]] = {}
        self._patterns: list[tuple[str, re.Pattern[str], tuple[str, str]]] = []
        for path, item in spec.get("paths", {}).items():
            for method, operation in item.items():
                if method not in _METHODS or "operationId" not in operation:
                    continue
                found = (operation["operationId"], path)
                self.by_resolved_id[f"{package}.{operation['operationId']}"] = found
                pattern = re.compile(
                    "".join(
                        "[^/]+" if part.startswith("{") else re.escape(part) for part in _PARAM.split(path)
                    )
                )
                self._patterns.append((method.upper(), pattern, found))

    def resolved(self, resolved_id: str) -> tuple[str, str]:
        return self.by_resolved_id.get(resolved_id, _UNROUTED)

    def match(self, method: str, path: str) -> tuple[str, str]:
        for wanted, pattern, found in self._patterns:
            if wanted == method and pattern.fullmatch(path):
                return found
        return _DOCS if path.startswith(DOCS_PATHS) else _UNROUTED

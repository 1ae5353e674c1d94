"""Routing's answers to requests no operation takes: a 404 before Flask sees them, a 405
that lists every method of the path, a 400 (not a 500) for a path integer too long to read.

Connexion hands a request its router matched to no operation on to Flask, whose own
router can still match it: Starlette's pattern for an API's mount stops at a newline,
Werkzeug's does not, so ``/batch-predictions/a%0Ab`` reached a view without Connexion's
context, and a 500. A trailing newline even matches both (``$`` matches before it),
with the two routers disagreeing on the parameters. No path of this API holds a control
character, and every route is an operation of the spec: nothing else needs Flask's router.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from connexion.exceptions import ProblemException
from connexion.frameworks.starlette import IntegerConverter
from connexion.middleware.abstract import ROUTING_CONTEXT, SpecMiddleware
from connexion.spec import Specification
from starlette.convertors import register_url_convertor
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnroutedNotFound:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            _CONTROL.search(scope["path"])
            or not scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
        ):
            detail = f"{scope['path'][:200]!r} not found: no resource of this API has that path (see /docs)"
            raise ProblemException(status=404, title="Not Found", detail=detail)
        await self.app(scope, receive, send)


class AllowedMethods(SpecMiddleware):
    """A 405 lists every method of the path in ``Allow``, not only the first operation's.

    Connexion makes one Starlette route per operation, and Starlette answers a method no
    route of the path takes from the first route of that path: ``PATCH`` on an alias was
    told ``Allow: GET, HEAD`` though the path also takes ``PUT`` and ``DELETE``. Placed
    before routing, this reads the spec's paths and completes the 405 routing raises.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def add_api(self, specification: Specification, base_path: str | None = None, **_: Any) -> None:
        base = specification.base_path if base_path is None else base_path
        for path, item in specification["paths"].items():
            methods = {
                method.upper() for method in item if method != "parameters" and not method.startswith("x-")
            }
            if "GET" in methods:
                methods.add("HEAD")  # Starlette answers HEAD wherever GET is
            template = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + path))
            self.paths.append((re.compile(template), frozenset(methods)))

    def allowed(self, path: str) -> list[str]:
        return sorted(
            {method for regex, methods in self.paths if regex.fullmatch(path) for method in methods}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except HTTPException as exc:
            if exc.status_code != 405:
                raise
            allowed = ", ".join(self.allowed(scope["path"]))
            raise HTTPException(
                405,
                detail=f"{scope['method']} is not allowed on {scope['path']}: use {allowed}",
                headers={**(exc.headers or {}), "Allow": allowed},
            ) from None


class _ReadableInteger(IntegerConverter):
    """Connexion's ``int`` path convertor, but a number Python will not read stays text, and a plus
    sign is not part of a number (``/versions/+1`` names no version: queries and forms agree)."""

    regex = r"-?[0-9]+"

    def convert(self, value: str) -> int | str:
        if len(value) > sys.get_int_max_str_digits():
            return value  # the spec's validation refuses it: "... is not of type 'integer'"
        return int(value)


class PathIntegers:
    """Integers in a path longer than Python reads (4300 digits) are a 400, not a 500.

    Starlette converts an integer path parameter with ``int()`` while matching routes, which
    raised ValueError past ``sys.get_int_max_str_digits()``. Connexion registers its ``int``
    convertor when its routing middleware is made; this middleware, made right after it (it
    sits before routing) and before any route is compiled, registers one that leaves such a
    number as text. It does nothing per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        register_url_convertor("int", _ReadableInteger())
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

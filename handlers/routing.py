"""Requests no operation of the spec can answer end here, as a 404, before Flask sees them.

Connexion hands a request its router matched to no operation on to Flask, whose own
router can still match it: Starlette's pattern for an API's mount stops at a newline,
Werkzeug's does not, so ``/batch-predictions/a%0Ab`` reached a view without Connexion's
context, and a 500. A trailing newline even matches both (``$`` matches before it),
with the two routers disagreeing on the parameters. No path of this API holds a control
character, and every route is an operation of the spec: nothing else needs Flask's router.
"""

from __future__ import annotations

import re

from connexion.exceptions import ProblemException
from connexion.middleware.abstract import ROUTING_CONTEXT
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

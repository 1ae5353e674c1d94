"""``X-Request-ID``: one id per request, taken from the client when sane, else made here.

The id is returned on every response, carried in problem bodies and set in
:data:`coe_template.observability.request_id`, the context variable log records read. The actor
(:data:`coe_template.observability.actor`, which key, set by :func:`handlers.security.bearer_info`)
is scoped to the request here too, so no request inherits another's.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coe_template.observability import actor, current_request_id
from coe_template.observability import request_id as _request_id

HEADER = "X-Request-ID"
#: A client's id is kept only if it is a short token of safe characters: it ends up in logs.
SANE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

__all__ = ["HEADER", "RequestId", "current_request_id", "request_id_for"]


def request_id_for(given: str | None) -> str:
    return given if given is not None and SANE.fullmatch(given) else uuid.uuid4().hex


class RequestId:
    """Outermost of the app's middlewares, so every response (errors included) carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id_for(given)
        token = _request_id.set(request_id)
        acting = actor.set(
            None
        )  # who, once a key is checked (handlers.security.bearer_info): this request's only

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            actor.reset(acting)
            _request_id.reset(token)

"""Security headers on every response, set in one place: successes, problems and the Swagger UI.

- ``X-Content-Type-Options: nosniff`` everywhere: a browser never guesses a type other
  than the one sent (a JSON body echoing a client's text is never run as HTML).
- ``Cache-Control: no-store`` on problems (they describe one request, carry its id, and
  must not be served to another client by a cache) and on the operations whose answer
  is about the client's own input: predictions, and the batch create that returns a job token.
- ``WWW-Authenticate: Bearer`` on a 401, as RFC 9110 requires, saying what to send.

It sits outside Connexion's exception middleware, so the problems it renders pass here too.
"""

from __future__ import annotations

from connexion.middleware.abstract import ROUTING_CONTEXT
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Operations whose responses no cache may keep, by the handler their ``operationId`` resolves to.
NO_STORE_OPERATIONS = frozenset(
    {
        f"handlers.{operation}"
        for operation in ("predictions.create", "versions.predict", "batch_predictions.create")
    }
)
PROBLEM = "application/problem+json"
#: The headers every response carries, and those a problem adds (also sent by the server's own refusals).
NOSNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Made here, so the router's record of the operation lands in this dict: the Swagger UI
        # middleware passes the router a shallow copy of the scope, which shares it.
        extensions = scope.setdefault("extensions", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[NOSNIFF[0]] = NOSNIFF[1]
                operation = extensions.get(ROUTING_CONTEXT, {}).get("operation_id")
                if operation in NO_STORE_OPERATIONS or headers.get("content-type", "").startswith(PROBLEM):
                    headers[NO_STORE[0]] = NO_STORE[1]
                if message["status"] == 401 and "www-authenticate" not in headers:
                    headers["WWW-Authenticate"] = "Bearer"
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""Bearer keys: who may read, who may change, and where a key may never travel.

Keys come from the environment (``COE_ADMIN_KEYS``, ``COE_READ_KEYS``). Two layers:

- :func:`bearer_info` is Connexion's check for the operations whose spec names
  ``bearerAuth`` (changes to the registry): an admin key passes, a read key is a 403.
  Connexion checks scopes only for OAuth2, so the admin role is enforced here.
- :class:`KeyGuard`, an ASGI middleware in front of the Swagger UI and the router,
  refuses credentials sent in the query string (they end up in access logs, proxies'
  logs and browser history) and, with ``COE_REQUIRE_KEYS_FOR_READS=true``, every
  request without a read or admin key, except the :data:`OPEN_PATHS` an orchestrator
  or a reader of the docs needs. The flag is a deployment choice, not a property of
  an operation: keeping it out of the spec's ``security`` lets one spec serve both
  kinds of deployment, and the admin operations keep Connexion's own check behind it.

Every comparison is constant-time against every configured key, and no key is ever
logged (the messages below name no value).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from connexion.exceptions import ProblemException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from coe_template.observability import actor

#: Paths answered without a key even when every read needs one: the probes (an orchestrator
#: calls them without secrets), the Swagger UI with its spec (the API's public contract) and the
#: pages the problems' ``type`` URIs name (a client refused with a 401 can read what it means).
OPEN_PATHS = frozenset({"/livez", "/readyz", "/openapi.json", "/docs"})
OPEN_PREFIXES = ("/docs/", "/problems/")
#: Query parameters that look like credentials: refused on every path, whatever their value.
QUERY_CREDENTIALS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "auth",
        "authorization",
        "bearer",
        "job_token",
        "job-token",
        "password",
        "secret",
    }
)

# The same words as Connexion's own bearer check, so a client sees one 401 whatever refused it.
NO_TOKEN = "No authorization token provided"
BAD_HEADER = "Invalid authorization header"
BAD_TOKEN = "Provided token is not valid"


def known(token: str, keys: Iterable[str]) -> bool:
    """Whether ``token`` is one of ``keys``: compared with every key, each in constant time,
    so neither the time taken nor an early exit tells how much of a key matched or which."""
    given = token.encode()
    matches = [hmac.compare_digest(given, key.encode()) for key in keys]  # every key, no early exit
    return any(matches)


def key_id(token: str) -> str:
    """Which key, without the key: the first 12 hex digits of its sha256 (the registry's history records it)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def bearer_info(token: str, request: Request) -> dict[str, Any] | None:
    state = request.scope.get("state", {})
    if known(token, state.get("admin_keys", ())):
        actor.set(key_id(token))  # for the registry's history; scoped to this request by RequestId
        return {"sub": "admin", "scope": ["admin"]}
    if known(token, state.get("read_keys", ())):
        raise ProblemException(
            status=403, title="Forbidden", detail="this key may only read: send an admin key"
        )
    return None  # Connexion answers 401


def job_token_info(token: str) -> dict[str, Any]:
    """A ``Job-Token`` header was sent: whether it is this job's is for the handler to check
    against the database (a query has no place in the event loop that runs this)."""
    return {"sub": "job-token", "job_token": token}


def refused_query_parameters(query_string: bytes) -> list[str]:
    """The credential-like parameter names in a query string, in order, each once."""
    names = (name for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    return list(dict.fromkeys(n for n in names if n.lower() in QUERY_CREDENTIALS))


class KeyGuard:
    """No credentials in the query string; and, if ``keys`` is given, a key for every path but the open ones."""

    def __init__(self, app: ASGIApp, keys: frozenset[str] | None = None) -> None:
        self.app = app
        self.keys = keys  # None: reads are open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = refused_query_parameters(scope.get("query_string", b""))
            if refused:
                raise ProblemException(
                    status=400,
                    title="Bad Request",
                    detail=f"credentials are not accepted in the query string ({', '.join(refused)[:100]}): "
                    "it is logged and cached along the way; send Authorization: Bearer <key> instead",
                )
            if self.keys is not None and not self.is_open(scope["path"]):
                self.check(Headers(scope=scope).get("authorization"))
        await self.app(scope, receive, send)

    @staticmethod
    def is_open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def check(self, authorization: str | None) -> None:
        if not authorization:
            raise ProblemException(status=401, title="Unauthorized", detail=NO_TOKEN)
        try:  # parsed as Connexion's own check parses it
            scheme, token = authorization.split(maxsplit=1)
        except ValueError:
            raise ProblemException(status=401, title="Unauthorized", detail=BAD_HEADER) from None
        if scheme.lower() != "bearer":
            raise ProblemException(status=401, title="Unauthorized", detail=NO_TOKEN)
        if not known(token, self.keys or ()):
            raise ProblemException(status=401, title="Unauthorized", detail=BAD_TOKEN)

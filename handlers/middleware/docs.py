"""``/docs`` and ``/openapi.json`` as the spec file says them, not as Connexion rewrites them.

- ``GET /docs``: a permanent redirect to ``/docs/`` that says so, not Connexion's empty 307. The
  Swagger UI's page loads its scripts and styles by relative paths (``./swagger-ui.css``), so it is
  served at ``/docs/`` only (at ``/docs`` they would resolve to ``/swagger-ui.css``). Problems point
  readers at ``/docs``: a browser follows the redirect either way, and a terminal (``curl``) is told
  where the UI is instead of getting an empty body. 308: the UI's address never changes.
- ``GET /openapi.json`` (and ``.yaml``): the spec with the file's ``servers`` entry (its description
  kept), its URL prefixed by the root path a proxy mounts the service under. Connexion replaces
  ``servers`` with ``[{"url": <root path>}]``, which is ``''`` when there is none: the file says ``/``.
"""

from __future__ import annotations

from typing import Any

from connexion.jsonifier import Jsonifier
from connexion.middleware.abstract import SpecMiddleware
from connexion.spec import Specification
from connexion.utils import yamldumper
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

#: Where Connexion serves the Swagger UI (``SwaggerUIOptions(swagger_ui_path=...)``).
DOCS_PATH = "/docs"
SPEC_PATHS = {"/openapi.json": "application/json", "/openapi.yaml": "text/yaml"}


class Docs(SpecMiddleware):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.specification: Specification | None = None

    def add_api(self, specification: Specification, **_: Any) -> None:
        self.specification = specification

    def served(self, root_path: str) -> dict[str, Any]:
        """The document a client at ``root_path`` reads: each relative server URL under that root."""
        assert self.specification is not None, "add_api is called before the first request"
        # A fresh copy, $refs resolved, as Connexion serves it (the other middlewares share the original).
        document = dict(self.specification.clone().spec)
        root = root_path.rstrip("/")
        servers = []
        for server in document.get("servers", [{"url": "/"}]):
            url = server["url"]
            if root and url.startswith("/"):
                url = (root + url).rstrip("/")  # "/" under "/api" is "/api", as Connexion says it
            servers.append({**server, "url": url})
        return {**document, "servers": servers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        answer: Response
        if path == DOCS_PATH:
            target = root.rstrip("/") + DOCS_PATH + "/"
            answer = PlainTextResponse(
                f"The Swagger UI is at {target}\n", status_code=308, headers={"Location": target}
            )
        elif path in SPEC_PATHS:
            document = self.served(root)
            body = Jsonifier().dumps(document) if path.endswith(".json") else yamldumper(document)
            answer = Response(body, media_type=SPEC_PATHS[path])
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)

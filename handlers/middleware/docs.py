"""``/docs``: where the Swagger UI is, said in a clean answer.

- ``GET /docs``: a permanent redirect to ``/docs/`` that says so, not Connexion's empty 307. The
  Swagger UI's page loads its scripts and styles by relative paths (``./swagger-ui.css``), so it is
  served at ``/docs/`` only (at ``/docs`` they would resolve to ``/swagger-ui.css``). Problems point
  readers at ``/docs``: a browser follows the redirect either way, and a terminal (``curl``) is told
  where the UI is instead of getting an empty body. 308: the UI's address never changes.
"""

from __future__ import annotations

from typing import Any

from connexion.middleware.abstract import SpecMiddleware
from connexion.spec import Specification
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

#: Where Connexion serves the Swagger UI (``SwaggerUIOptions(swagger_ui_path=...)``).
DOCS_PATH = "/docs"


class Docs(SpecMiddleware):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.specification: Specification | None = None

    def add_api(self, specification: Specification, **_: Any) -> None:
        self.specification = specification

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
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)

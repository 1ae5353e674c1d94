"""The service without its ``Observe`` middleware (metrics and access line): what they cost.

``bench/serving.py`` serves this beside ``wsgi:app``; the only difference between the
two is that one middleware, replaced here by one that passes every request through.

    gunicorn -c config/gunicorn.py bench.unobserved_app:app
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from handlers import app as service


class PassThrough:
    def __init__(self, app: ASGIApp, **_options: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


service.Observe = PassThrough  # type: ignore[misc,assignment]  # create_app looks it up when called
app = service.create_app()

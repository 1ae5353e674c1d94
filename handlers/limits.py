"""Bound request bodies in size and in time, before anything downstream sees them.

Connexion's validation reads the whole body first, so Flask's
``MAX_CONTENT_LENGTH`` comes too late: :class:`BodySizeLimit` sits in front and
decides from the headers alone.

Flask runs in a fixed pool of 10 threads, and a body Connexion does not validate
(a ``text/csv`` upload) is read inside one of them: ten clients sending a body a
byte at a time would hold every thread, and predictions would wait.
:class:`BodyDeadline` reads every body in the event loop, where a slow client
costs no thread, and gives up with a 408 when it takes too long.
"""

from __future__ import annotations

import asyncio
import re

from connexion.exceptions import ProblemException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: A number of bytes: ASCII digits (str.isdigit() takes '²', int() does not), as many as a 64-bit
#: size has (int(), here and in Connexion, refuses more than 4300).
_DIGITS = re.compile(r"[0-9]{1,20}")


class BodySizeLimit:
    """``max_bytes`` everywhere, ``upload_bytes`` for the paths that take uploads."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int, upload_paths: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = self.upload_bytes if scope["path"] in self.upload_paths else self.max_bytes
            self.check(Headers(scope=scope), limit)
        await self.app(scope, receive, send)

    @staticmethod
    def check(headers: Headers, limit: int) -> None:
        declared = headers.get("content-length")
        if declared is None:
            if "transfer-encoding" in headers:
                # A body of unknown size: it could only be bounded by reading it.
                raise ProblemException(
                    status=411, title="Length Required",
                    detail="send the body with a Content-Length header; chunked bodies are not accepted",
                )
            return
        if not _DIGITS.fullmatch(declared):
            raise ProblemException(status=400, title="Bad Request",
                                   detail=f"Content-Length must be a number of bytes, not {declared[:40]!r}")
        if int(declared) > limit:
            raise ProblemException(
                status=413, title="Payload Too Large",
                detail=f"request body of {declared} bytes exceeds the limit of {limit} bytes",
            )


class BodyDeadline:
    """Receive the whole body within ``seconds`` plus one second per ``min_rate`` bytes declared; then replay it.

    Placed after :class:`BodySizeLimit`, so the body is declared (``Content-Length``)
    and within the limit: buffering it costs no more memory than the readers that
    follow (validation, Flask) would use anyway.
    """

    def __init__(self, app: ASGIApp, seconds: float, min_rate: float) -> None:
        self.app = app
        self.seconds = seconds
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length", "0") if scope["type"] == "http" else "0"
        if declared in ("", "0"):
            await self.app(scope, receive, send)
            return
        deadline = self.seconds + int(declared) / self.min_rate
        body = bytearray()
        try:
            async with asyncio.timeout(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left: nobody to answer
                    body += message.get("body", b"")
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise ProblemException(
                status=408, title="Request Timeout",
                detail=f"the request body ({declared} bytes declared) did not arrive within {deadline:g} s; "
                       f"received {len(body)} bytes",
                headers={"Connection": "close"},  # the rest of the body is not wanted on this connection
            ) from None

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what follows the body: a disconnect, in time
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

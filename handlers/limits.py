"""Refuse oversized request bodies before anything reads them into memory.

Connexion's validation reads the whole body first, so Flask's
``MAX_CONTENT_LENGTH`` comes too late; this ASGI middleware sits in front and
decides from the headers alone.
"""

from __future__ import annotations

import re

from connexion.exceptions import ProblemException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

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

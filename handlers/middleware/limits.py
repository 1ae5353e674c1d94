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
import ctypes
import ctypes.util
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from connexion.exceptions import ProblemException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coe_template.errors import Busy

#: A number of bytes: ASCII digits (str.isdigit() takes '²', int() does not), as many as a 64-bit
#: size has (int(), here and in Connexion, refuses more than 4300).
_DIGITS = re.compile(r"[0-9]{1,20}")
#: Bytes of a body handed downstream at a time (the pieces a server receives are joined up to it).
PIECE_BYTES = 1 << 20
#: A body this large leaves freed memory the allocator may keep: it is handed back to the system after.
TRIM_AFTER_BYTES = 8 << 20


def _libc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_malloc_trim = _libc_trim()


def release_free_memory() -> None:
    """Give the pages glibc keeps after a large request back to the system (``malloc_trim``).

    A 50 MiB upload frees tens of MB in small blocks, which glibc keeps in its arenas for
    reuse: the worker would stay that much larger. Trimming takes milliseconds.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


#: Retry-After of a refusal at a per-process limit: requests and bodies in progress end within seconds.
BUSY_RETRY_SECONDS = 1


#: The media types an upload path reads as it streams (a chunk at a time); any other body there is parsed whole.
STREAMED_TYPES = ("text/csv", "multipart/form-data")


class BodySizeLimit:
    """``max_bytes`` everywhere; on the paths that take uploads, ``upload_bytes`` for a body read as it
    streams (CSV), ``whole_upload_bytes`` for one parsed whole before the handler sees it (JSON)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int,
        whole_upload_bytes: int,
        upload_paths: tuple[str, ...],
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.whole_upload_bytes = whole_upload_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            self.check(headers, self.limit(scope["path"], headers.get("content-type", "")))
        await self.app(scope, receive, send)

    def limit(self, path: str, content_type: str) -> int:
        if path not in self.upload_paths:
            return self.max_bytes
        media_type = content_type.partition(";")[0].strip().lower()
        return (
            self.upload_bytes
            if media_type in STREAMED_TYPES
            else min(self.upload_bytes, self.whole_upload_bytes)
        )

    @staticmethod
    def check(headers: Headers, limit: int) -> None:
        declared = headers.get("content-length")
        if declared is None:
            if "transfer-encoding" in headers:
                # A body of unknown size: it could only be bounded by reading it.
                raise ProblemException(
                    status=411,
                    title="Length Required",
                    detail="send the body with a Content-Length header; chunked bodies are not accepted",
                )
            return
        if not _DIGITS.fullmatch(declared):
            raise ProblemException(
                status=400,
                title="Bad Request",
                detail=f"Content-Length must be a number of bytes, not {declared[:40]!r}",
            )
        if int(declared) > limit:
            raise ProblemException(
                status=413,
                title="Payload Too Large",
                detail=f"request body of {declared} bytes exceeds the limit of {limit} bytes",
            )


class BodyBudget:
    """Bytes of request bodies one process may hold at once: reserved from ``Content-Length`` before reading.

    Without it, every open connection could have a body buffered (up to 256 x 50 MiB
    per worker). Beyond the budget a body is refused at once with ``503 busy`` rather than
    read: its client retries later, and the bodies already being read are unaffected.
    One per process (the event loop is single-threaded: no lock).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.reserved = 0

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        if self.reserved + size > self.max_bytes:
            raise Busy(
                f"this server process is already receiving {self.reserved} bytes of request bodies; "
                f"{size} more would exceed its limit of {self.max_bytes}; retry in a moment",
                retry_after=BUSY_RETRY_SECONDS,
            )
        self.reserved += size
        try:
            yield
        finally:
            self.reserved -= size


class BodyDeadline:
    """Receive the whole body within ``seconds`` plus one second per ``min_rate`` bytes declared; then replay it.

    Placed after :class:`BodySizeLimit`, so the body is declared (``Content-Length``)
    and within the limit; its bytes are reserved from ``budget`` (a :class:`BodyBudget`)
    until the request ends, however it ends.
    """

    def __init__(self, app: ASGIApp, seconds: float, min_rate: float, budget: BodyBudget) -> None:
        self.app = app
        self.seconds = seconds
        self.min_rate = min_rate
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length", "0") if scope["type"] == "http" else "0"
        if declared in ("", "0"):
            await self.app(scope, receive, send)
            return
        with self.budget.reserve(int(declared)):
            pieces = await self._read(receive, declared)
            if pieces is None:
                return  # the client left: nobody to answer
            pieces.reverse()  # popped from the end, in order

            async def replay() -> Message:
                if not pieces:
                    return await receive()  # what follows the body: a disconnect, in time
                # Handed over one piece at a time, each then held only by its reader: an upload read
                # as it streams (a CSV) frees the body as it goes, rather than copied whole downstream.
                return {"type": "http.request", "body": pieces.pop(), "more_body": bool(pieces)}

            try:
                await self.app(scope, replay, send)
            finally:
                pieces.clear()
                if int(declared) >= TRIM_AFTER_BYTES:
                    release_free_memory()

    async def _read(self, receive: Receive, declared: str) -> list[bytes] | None:
        """The whole body, in pieces of at least :data:`PIECE_BYTES` (but the last); None if the client left.

        The pieces a server hands over can be small (a slow client's): small ones are joined, so a
        body is a few dozen objects, and one that came whole stays one piece (no copy).
        """
        deadline = self.seconds + int(declared) / self.min_rate
        pieces: list[bytes] = []
        small: list[bytes] = []
        held = 0  # bytes in ``small``
        received = 0
        try:
            async with asyncio.timeout(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    small.append(chunk)
                    held += len(chunk)
                    received += len(chunk)
                    more = message.get("more_body", False)
                    if held >= PIECE_BYTES or not more:
                        pieces.append(small[0] if len(small) == 1 else b"".join(small))
                        small, held = [], 0
                    if not more:
                        break
        except TimeoutError:
            raise ProblemException(
                status=408,
                title="Request Timeout",
                detail=f"the request body ({declared} bytes declared) did not arrive within {deadline:g} s; "
                f"received {received} bytes",
                headers={"Connection": "close"},  # the rest of the body is not wanted on this connection
            ) from None
        return pieces


class InFlightLimit:
    """At most ``limit`` requests of this process in the app at once (bodies all in); beyond, ``503 busy``.

    What is scarce is the app's work: Flask's 10 threads and what queues for them. A
    connection still sending its header section or its body, or idle between requests,
    costs a small buffer and is bounded in time (and its body in :class:`BodyBudget`):
    it does not count, so many slow clients cannot make everyone else's requests refused.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt  # paths always served (liveness: a busy worker is not a dead one)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            raise Busy(
                f"this server process has {self.limit} requests in progress, its limit; retry in a moment",
                retry_after=BUSY_RETRY_SECONDS,
            )
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

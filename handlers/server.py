"""The server: gunicorn's worker class, uvicorn with the limits this service needs, and its HTTP protocol.

``uvicorn_worker.UvicornWorker`` passes only a few gunicorn settings to uvicorn
(see the table in ``config/gunicorn.py``); everything else comes from its
``CONFIG_KWARGS``, set here from :class:`config.settings.Settings`.

uvicorn (0.54) has no deadline for a request's header section and, with its
default httptools parser, no bound on its size either (``h11_max_incomplete_event_size``
applies only to the slower pure-Python h11 parser). A client that opens
connections and sends headers a byte at a time, or without end, would keep them
open and their buffers growing forever. :class:`BoundedHttpToolsProtocol` adds
both bounds to the httptools parser (the request *body* gets its deadline from
``handlers.middleware.limits.BodyDeadline``), answers beyond ``COE_MAX_CONNECTIONS`` with the
service's problem document (its own refusals too: 400, 408, 431, rendered by
``handlers.problems.raw``), stops without dropping requests already sent, and
closes a connection whose client is still sending without destroying its answer.

Requests in progress (``COE_LIMIT_CONCURRENCY``) are bounded in the app, by
``handlers.middleware.limits.InFlightLimit``, once a request's body is all in: uvicorn's own
``limit_concurrency`` counts every connection, so a few hundred half-sent requests
from one client would have everyone else answered 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gunicorn.config import Config as GunicornConfig
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from coe_template.batch.runner import GRACE_SECONDS
from config.settings import Settings
from handlers import problems
from handlers.middleware.limits import BUSY_RETRY_SECONDS
from handlers.middleware.request_id import RequestId, current_request_id, request_id_for

#: Of gunicorn's ``graceful_timeout``, the seconds kept for the app's own shutdown once requests
#: are done (the lifespan: the batch runner finishes its chunk within its grace or hands it back).
APP_SHUTDOWN_SECONDS = int(GRACE_SECONDS) + 5


class Overloaded:
    """The answer beyond ``max_connections``: uvicorn's is a bare text 503; this is the service's problem."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = problems.raw(
            503,
            f"this server process has {self.limit} connections open, its limit; retry in a moment",
            current_request_id() or request_id_for(None),
            kind="busy",
            headers={"Retry-After": str(BUSY_RETRY_SECONDS), "Connection": "close"},
        )
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class HeaderSectionTooLarge(Exception):
    """Raised inside the parser's callback to stop it."""


class _LingeringClose:
    """The connection's transport as uvicorn sees it: closing while the client still sends lingers.

    Closing a socket that has unread input makes the kernel send a reset, which can
    destroy the answer just written (a 408 for a late body, a 413) before the client reads it.
    """

    def __init__(self, transport: asyncio.Transport, protocol: BoundedHttpToolsProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        cycle = self._protocol.cycle
        if cycle is not None and cycle.more_body and not self._transport.is_closing():
            self._protocol.linger()  # answered before the body was all in
        else:
            self._transport.close()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size bound for each request's header section, and a gentler stop.

    The deadline starts when a connection opens (a connection that never sends
    anything is closed after it too) and when the first byte of each later
    request on a kept-alive connection arrives; idle kept-alive connections are
    closed by uvicorn's own ``timeout_keep_alive``.

    On stop, uvicorn closes at once every connection without a request in progress,
    even one whose request is half-received or already waiting in the socket: its
    client sees a reset. Here such a request is still answered (as the connection's
    last); an idle connection is closed after ``shutdown_grace`` seconds, time for a
    request already on its way to arrive.
    """

    header_timeout: float = Settings.header_timeout
    max_header_bytes: int = Settings.max_header_bytes
    #: Open connections per worker beyond which requests get :class:`Overloaded`: a bound on
    #: descriptors, set high (requests in progress are bounded by ``handlers.middleware.limits.InFlightLimit``).
    connection_limit: int = 1024
    shutdown_grace: float = 0.5
    #: After answering a client that is still sending: seconds its input is read and dropped
    #: (its answer sent, then end of stream) before the connection closes, as Apache and nginx do.
    linger_seconds: float = 2.0

    _header_deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _oversized = False
    _stopping = False
    lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._socket = transport
        self.transport = _LingeringClose(transport, self)  # type: ignore[assignment]
        self._start_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # answered already: dropped
        super().data_received(data)  # may begin and complete a header section
        if self._header_deadline is not None and not self.transport.is_closing():
            # Still incomplete: every byte so far belongs to it.
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, self._too_large)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_deadline()

    def on_headers_complete(self) -> None:
        self._stop_header_deadline()
        # Complete within one read (up to 256 KiB): measure what was parsed, as it was sent
        # ("METHOD URL HTTP/1.1", "name: value" lines, the blank line; whitespace normalised).
        size = (
            len(self.parser.get_method())
            + len(self.url)
            + 14
            + sum(len(name) + len(value) + 4 for name, value in self.headers)
        )
        if size > self.max_header_bytes:
            self._oversized = True
            raise HeaderSectionTooLarge  # stops the parser; uvicorn answers through send_400_response
        if len(self.connections) > self.connection_limit:
            self.logger.warning("%s connections open: request answered 503", len(self.connections))
            app, self.app = self.app, RequestId(Overloaded(self.connection_limit))
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed

    def on_response_complete(self) -> None:
        # Answered before its body was all in (a 413, a busy refusal): nothing would bound the wait
        # for the rest (uvicorn's keep-alive timer stops at the next byte, and no header deadline
        # starts), so the rest is dropped and the connection closed, as after a 408.
        cycle = self.cycle
        unread = cycle is not None and cycle.response_complete and cycle.more_body and not self.pipeline
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            self.linger()

    def shutdown(self) -> None:
        self._stopping = True
        if self._answering():
            self.cycle.keep_alive = False  # answered, then closed (uvicorn's own way)
        elif not self._receiving():  # (a half-received one is made the last in on_headers_complete)
            self.loop.call_later(self.shutdown_grace, self._close_if_idle)

    def _answering(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _receiving(self) -> bool:
        """A header section has begun and is not complete."""
        return self._header_deadline is not None and self._header_bytes > 0

    def _close_if_idle(self) -> None:
        if not (self._answering() or self._receiving() or self.transport.is_closing()):
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self._oversized:
            self._refuse(431, self._too_large)
        else:  # uvicorn's: a request the parser refused ("Invalid HTTP request received.")
            self._refuse(400, msg)

    @property
    def _too_large(self) -> str:
        return f"request header section exceeds {self.max_header_bytes} bytes"

    def _start_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._header_bytes:  # a request was begun: say why it is dropped
            self._refuse(408, f"request header section not received within {self.header_timeout:g} s")
        else:  # an idle new connection: nothing to answer
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer before any request exists (the app never sees it) and close, as uvicorn's own 400 does.

        The answer is the service's problem document with a new request id (logged with the refusal).
        """
        self._stop_header_deadline()
        request_id = request_id_for(None)
        self.logger.warning("%s from %s: %s (request id %s)", status, self.client, message, request_id)
        headers, body = problems.raw(status, message, request_id, headers={"Connection": "close"})
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", body])
        self.transport.write(b"".join(content))
        self.linger()

    def linger(self) -> None:
        """End the answer (FIN), drop what the client still sends, close a little later."""
        if self.lingering:
            return
        self._stop_header_deadline()
        if not self._socket.can_write_eof():
            self._socket.close()
            return
        self.lingering = True
        self._socket.write_eof()
        self.flow.resume_reading()  # uvicorn pauses reading while a body waits for the app
        self.loop.call_later(self.linger_seconds, self._socket.close)


def uvicorn_options(settings: Settings, cfg: GunicornConfig) -> dict[str, Any]:
    """uvicorn's options beyond those ``UvicornWorker`` already takes from gunicorn."""
    protocol = type(
        "Protocol",
        (BoundedHttpToolsProtocol,),
        {
            "header_timeout": settings.header_timeout,
            "max_header_bytes": settings.max_header_bytes,
            "connection_limit": settings.connection_limit,
        },
    )
    return {
        "http": protocol,
        # Not advertised: it only helps someone looking for a known vulnerable version.
        "server_header": False,
        # The API has no WebSocket: an upgrade request is refused (400), no WebSocket code runs.
        "ws": "none",
        # uvicorn's limit counts every connection (slow and idle ones too): a few hundred half-sent
        # requests from one client would have everyone else refused. Requests in progress are
        # bounded in the app (COE_LIMIT_CONCURRENCY), connections by the protocol's connection_limit.
        "limit_concurrency": None,
        # uvicorn otherwise waits without limit for in-flight requests on SIGTERM, and the
        # master's SIGKILL at ``graceful_timeout`` would cut the app's own shutdown (lifespan).
        "timeout_graceful_shutdown": max(1, cfg.graceful_timeout - APP_SHUTDOWN_SECONDS),
    }


class ServingProcess(UvicornWorker):
    """gunicorn's ``worker_class = "handlers.server.ServingProcess"``: built in the master, before each fork."""

    def __init__(
        self, age: int, ppid: int, sockets: list, app: Any, timeout: float, cfg: GunicornConfig, log: Any
    ) -> None:
        self.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, **uvicorn_options(Settings.from_env(), cfg)}
        super().__init__(age, ppid, sockets, app, timeout, cfg, log)

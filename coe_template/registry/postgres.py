"""psycopg connections that never wait for PostgreSQL longer than a deadline.

``connect_timeout`` bounds connecting and ``statement_timeout`` makes the server
cancel a slow statement, but a server that is frozen (its processes stopped, a
network that drops packets) enforces nothing: the client would wait forever on
its socket. psycopg funnels every wait for the server through
:meth:`psycopg.Connection.wait`, which takes a timeout since psycopg 3.3; this
subclass gives every wait a default one and, when it expires, closes the
connection (its state is unknown: it must never be used again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

import psycopg
from psycopg import errors

#: The server cancels a statement first; the client gives up this much later.
CLIENT_MARGIN = 1.0


class DeadlineExpired(psycopg.OperationalError):
    """The server did not answer one round trip in time; the connection is closed."""


class DeadlineConnection(psycopg.Connection):
    #: Seconds any one wait for the server may take (set per engine by :func:`connection_class`).
    deadline: float = 6.0

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        try:
            return super().connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            # A connection attempt that timed out leaves its socket open in psycopg's frames, which
            # the error's traceback keeps (in a reference cycle) until the garbage collector runs: on
            # a frozen server every retry added one, beyond the pool's bound. Without the traceback
            # they are freed now, and libpq closes the socket.
            raise exc.with_traceback(None) from None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None:
            # The caller's own bound (``notifies(timeout=...)``): its expiry is an answer, not a failure.
            return super().wait(gen, interval=interval, timeout=timeout)
        try:
            return super().wait(gen, interval=interval, timeout=self.deadline)
        except errors._WaitTimeout:  # psycopg's own signal that the timeout given to wait() expired
            self.pgconn.finish()
            raise DeadlineExpired(f"the database did not answer within {self.deadline:g} s") from None


def connection_class(timeout: float) -> type[DeadlineConnection]:
    """A connection class whose waits end ``CLIENT_MARGIN`` after the server's own statement timeout."""
    return type("DeadlineConnection", (DeadlineConnection,), {"deadline": timeout + CLIENT_MARGIN})


def connect_params(params: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """``params`` with libpq's connect timeout and the server's statement timeout added (kept if set)."""
    params = dict(params)
    params.setdefault("connect_timeout", max(2, math.ceil(timeout)))  # libpq: whole seconds, at least 2
    options = params.get("options", "")
    if "statement_timeout" not in options:
        params["options"] = f"{options} -c statement_timeout={int(timeout * 1000)}".strip()
    return params


def timed_out(error: BaseException) -> bool:
    """Whether the error is a timeout: connecting, the server's statement timeout, or our deadline."""
    return isinstance(error, (DeadlineExpired, errors.ConnectionTimeout, errors.QueryCanceled))

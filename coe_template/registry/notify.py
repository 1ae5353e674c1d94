"""Promotions reach every replica at once on PostgreSQL: NOTIFY as an alias moves, LISTEN in each worker.

Polling alone makes a promotion take up to ``COE_REFRESH_SECONDS`` to be served.
On PostgreSQL the transaction that moves an alias also queues a notification,
delivered only if it commits, so nobody reloads for a change that was rolled back.
Each serving process keeps one connection of its own (never one of the bounded
request pool: it is held for as long as the process lives) listening for them.
Polling stays the fallback: a notification sent while a listener was reconnecting
is lost, so the listener asks for a refresh after every (re)connect. SQLite has
no notifications: there, polling is all there is.

The channel is database-wide: processes on other schemas of the same database
wake up too, and find nothing changed (one extra read).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from coe_template.registry.db import limits_of

log = logging.getLogger(__name__)

#: The channel alias changes are announced on; the payload is the model's name.
CHANNEL = "coe_aliases"
#: How long one wait for notifications lasts: also how long :meth:`AliasListener.stop` may take.
WAIT_SECONDS = 0.5
#: Seconds before the first reconnection attempt; doubled after each failure, up to ``MAX_RETRY_SECONDS``.
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
#: TCP keepalives (libpq's): a listener idles for hours, and a dead server or network would
#: otherwise never be noticed. Idle this long, then probes this often, this many times.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def announce(session: Session, name: str) -> None:
    """Queue a notice that an alias of ``name`` moved: PostgreSQL sends it only if ``session`` commits."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name})


class AliasListener:
    """A thread holding one connection that ``LISTEN``s, calling ``wake`` when ``name``'s aliases move.

    ``wake`` is also called after every (re)connect, since notifications sent while
    not listening are lost. Failures to connect are retried with backoff and logged
    once until listening works again.
    """

    def __init__(self, engine: Engine, name: str, wake: Callable[[], None]) -> None:
        self.engine = engine
        self.name = name
        self.wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._delay = FIRST_RETRY_SECONDS

    def _connect(self) -> Any:
        """A connection of its own, in autocommit (LISTEN takes effect at once), every wait bounded."""
        from coe_template.registry.postgres import connect_params, connection_class  # psycopg only here

        timeout = limits_of(self.engine).timeout
        _args, params = self.engine.dialect.create_connect_args(self.engine.url)
        params = {**connect_params(params, timeout), **KEEPALIVES, "application_name": "coe-listener"}
        return connection_class(timeout).connect(**params, autocommit=True)

    def _listen(self) -> None:
        """Listen until stopped (returns) or the connection fails (raises)."""
        with self._connect() as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._delay = FIRST_RETRY_SECONDS
            if self._last_error is not None:
                log.info("listening for promotions of %s again", self.name)
                self._last_error = None
            self.wake()  # whatever moved while we were not listening
            while not self._stop.is_set():
                # Blocks in select() on the socket, the GIL released, for at most WAIT_SECONDS.
                for note in connection.notifies(timeout=WAIT_SECONDS):
                    if note.payload == self.name:
                        self.wake()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError) as exc:
                message = str(exc).strip() or type(exc).__name__
                if message != self._last_error:
                    log.warning(
                        "not listening for promotions of %s (polling meanwhile, reconnecting "
                        "with backoff): %s",
                        self.name,
                        message,
                    )
                self._last_error = message
            except Exception:  # never let the listener die: polling goes on regardless
                log.exception("the promotion listener of %s failed", self.name)
            if self._stop.wait(self._delay):
                return
            self._delay = min(self._delay * 2, MAX_RETRY_SECONDS)

    def start(self) -> None:
        """Start listening (in each process, after gunicorn's fork: threads and sockets do not survive it)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alias-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop within about ``WAIT_SECONDS`` (the connect timeout if it is connecting)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def listener_for(engine: Engine, name: str, wake: Callable[[], None]) -> AliasListener | None:
    """A listener on PostgreSQL; None elsewhere (SQLite has no notifications: polling only)."""
    if engine.dialect.name != "postgresql":
        return None
    return AliasListener(engine, name, wake)

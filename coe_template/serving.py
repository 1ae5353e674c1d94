"""What a server process predicts with: the ``production`` version, swapped in place.

Each process polls the registry, and on PostgreSQL is also woken at once by a
notification (:mod:`coe_template.registry.notify`); when the alias moves it loads
the new version completely, then replaces one reference. A request reads that
reference once, so it is answered wholly by the old or wholly by the new version.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from coe_template.artifacts.runs import Artifacts
from coe_template.errors import CoeError, Conflict, DatabaseUnavailable, Unavailable
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.notify import AliasListener, listener_for

log = logging.getLogger(__name__)


class ModelNotLoaded(Unavailable):
    """This process has no ``production`` version to serve (e.g. its files failed verification)."""


@dataclass(frozen=True)
class Served:
    name: str
    version: int
    artifacts: Artifacts


class ModelServer:
    def __init__(
        self, registry: Registry, name: str, refresh_seconds: float = 2.0, cache_size: int = 4
    ) -> None:
        self.registry = registry
        self.name = name
        self.refresh_seconds = refresh_seconds
        self.cache_size = cache_size
        self._current: Served | None = None
        self._pinned: OrderedDict[tuple[str, int], Served] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: AliasListener | None = None
        self._pid = os.getpid()
        self._last_error: str | None = None
        #: Called with each version this process starts serving (e.g. to export it as a metric).
        self.listeners: list[Callable[[Served], None]] = []

    @property
    def current(self) -> Served:
        served = self._current
        if served is None:
            raise ModelNotLoaded(f"no {PRODUCTION} version of {self.name!r} is loaded: see the server's log")
        return served

    def refresh(self) -> bool:
        """Load the version ``production`` points at if it is not the one served; True if swapped."""
        number = self.registry.get_alias(self.name, PRODUCTION)
        if self._current is not None and self._current.version == number:
            return False
        served = self.pinned(self.name, number)  # loads fully before anything changes
        self._current = served
        log.info("now serving %s version %d (run %s)", self.name, number, served.artifacts.run_id)
        for listener in self.listeners:
            listener(served)
        return True

    def ready(self, name: str, number: int) -> Served:
        """A version a client pinned: refused once archived, even if this process cached it.

        While the database is unavailable a cached version keeps answering: it was
        ready when loaded, and an archive made meanwhile cannot be seen anyway.
        """
        try:
            status = self.registry.get_version(name, number).status
        except DatabaseUnavailable:
            with self._lock:
                cached = self._pinned.get((name, number))
            if cached is None:
                raise
            return cached
        if status != "ready":
            raise Conflict(f"version {number} of {name!r} is {status}: it cannot predict")
        return self.pinned(name, number)

    def pinned(self, name: str, number: int) -> Served:
        """A specific version, kept in a small cache so comparisons do not reload it."""
        key = (name, number)
        with self._lock:
            if key in self._pinned:
                self._pinned.move_to_end(key)
                return self._pinned[key]
        served = Served(name, number, self.registry.load(name, number))
        with self._lock:
            self._pinned[key] = served
            while len(self._pinned) > self.cache_size:
                self._pinned.popitem(last=False)
        return served

    def try_refresh(self) -> None:
        """:meth:`refresh`; a failure is logged once, not at every poll."""
        try:
            self.refresh()
        except (CoeError, OSError) as exc:
            self.report_failure(exc)
        else:
            if self._last_error is not None:
                log.info("%s: checking production works again", self.name)
            self._last_error = None

    def report_failure(self, exc: BaseException) -> None:
        """Log why the served version could not be checked or loaded, unless that was the last failure too."""
        message = str(exc)
        if message != self._last_error:
            served = (
                f"keeping {self.name} version {self._current.version}"
                if self._current
                else f"serving no version of {self.name}, predictions refused"
            )
            log.error("%s (retrying every %g s): %s", served, self.refresh_seconds, message)
        self._last_error = message

    def wake(self) -> None:
        """Check ``production`` now rather than at the next poll (e.g. a promotion was announced)."""
        self._wake.set()

    def _poll(self) -> None:
        while True:
            self._wake.wait(self.refresh_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()  # before refreshing: a wake during the refresh means another one
            try:
                self.try_refresh()
            except Exception:  # never let the poller die: serving goes on with what it has
                log.exception("model refresh failed")

    def start(self) -> None:
        """Start polling, and on PostgreSQL listening (once per process: threads do not survive a fork)."""
        if os.getpid() != self._pid:
            # Forked (gunicorn preload): pooled connections belong to the parent.
            self.registry.engine.dispose(close=False)
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._poll, name="model-refresh", daemon=True)
        self._thread.start()
        self._listener = listener_for(self.registry.engine, self.name, self.wake)
        if self._listener is not None:
            self._listener.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._listener is not None:
            self._listener.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

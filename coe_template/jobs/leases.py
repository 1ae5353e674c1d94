"""Leased work, whatever the kind (batch chunks, training jobs): who holds a lease, and keeping it.

A worker that claims a row under a lease renews it from a small thread while it
works; a renewal that finds the row no longer its own tells the worker to drop its
result (the conditional completion would refuse it anyway).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from coe_template.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: Renewals never come closer than this, whatever the lease (tests use leases of 0 s).
MIN_RENEW_SECONDS = 0.05
#: The longest wait between tries while work keeps failing (e.g. the database is down).
MAX_BACKOFF_SECONDS = 10.0


def owner_id() -> str:
    """Who holds a lease: ``host:pid:random``, the host name cut so it fits the column (64)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Calls ``renew`` every third of the ``lease`` from a small thread while the work in hand is
    done: two renewals can fail before another worker may take the work.

    ``renew`` returns False once the work is no longer this worker's: :attr:`lost` is
    then set and renewing stops. ``what`` names the work in the log ("chunk 3 of job …").
    """

    def __init__(self, renew: Callable[[], bool], what: str, lease: timedelta) -> None:
        self.renew = renew
        self.what = what
        self.every = max(lease.total_seconds() / 3, MIN_RENEW_SECONDS)
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            try:
                if not self.renew():
                    log.warning("lost the lease on %s: its result will not be stored", self.what)
                    self.lost.set()
                    return
            except DatabaseUnavailable as exc:  # it may be back by the next beat, before the lease runs out
                log.warning("could not renew the lease on %s: %s", self.what, exc)
            except Exception:  # the database may be back by the next beat, before the lease runs out
                log.exception("could not renew the lease on %s", self.what)


def work_until_stopped(
    stop: threading.Event,
    run_once: Callable[[], object | None],
    wake: threading.Event,
    poll_seconds: float,
    kind: str,
    unit: str,
    before_idle: Callable[[], None] = lambda: None,
) -> None:
    """A runner's thread: ``run_once`` until ``stop``; with nothing to do, ``before_idle``, then wait
    for the next poll or less: ``wake`` (work created in this process, or a stop) ends the wait.

    A failure is not the end: a lease left behind expires and the work is retried. Tries back
    off while failures last, so a database that is down does not flood the log; its outage is
    logged once (``kind``: "batch", "training"), any other failure with its traceback
    (``unit``: "batch chunk", "training job").
    """
    failures = 0
    outage: str | None = None
    while not stop.is_set():
        try:
            if run_once() is None:
                before_idle()
                wake.wait(poll_seconds)
                wake.clear()
            failures = 0
            if outage is not None:
                log.info("%s: the database answers again", kind)
                outage = None
        except Exception as exc:
            if not isinstance(exc, DatabaseUnavailable):
                log.exception("%s failed", unit)
            elif str(exc) != outage:
                log.error("%s: pausing while the database is unavailable: %s", kind, exc)
                outage = str(exc)
            failures += 1
            stop.wait(min(poll_seconds * 2 ** min(failures, 10), MAX_BACKOFF_SECONDS))

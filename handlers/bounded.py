"""Database calls a probe or a scrape must not wait on for long (a stopped database never answers).

Each call runs in a daemon thread of its own and is waited for at most a timeout.
While a call of the same name is still stuck, the next caller waits on that one
instead of starting another: a hung database holds one thread and one connection
per name, not one per probe, and never keeps the process from exiting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


def _work(future: Future, call: Callable[[], Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(call())
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller, who decides
        future.set_exception(exc)


class Bounded:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future] = {}
        self._pid = os.getpid()

    def run(self, name: str, call: Callable[[], T], timeout: float) -> T:
        """``call()``'s result or exception; TimeoutError if it has not answered within ``timeout`` s."""
        return self.start(name, call).result(timeout=timeout)

    def start(self, name: str, call: Callable[[], T]) -> Future[T]:
        """``call()`` begun in its own thread (or the one of that name still running): wait on the future."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's threads did not come along
                self._pid, self._running = os.getpid(), {}
            future = self._running.get(name)
            if future is None or future.done():
                future = self._running[name] = Future()
                threading.Thread(
                    target=_work, args=(future, call), name=f"bounded-{name}", daemon=True
                ).start()
        return future


#: The process's bounded database calls (probes and scrapes).
database_calls = Bounded()

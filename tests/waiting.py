"""The one way a test waits for something to happen: poll a condition, fail at the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    seconds: float,
    message: str | Callable[[], str] = "the condition never held",
    every: float = 0.05,
) -> T:
    """``condition()``'s first true value, polled every ``every`` seconds; AssertionError after ``seconds``.

    The condition is asked once more at the deadline, so a slow machine never fails a test whose
    condition holds by then. ``message`` says what did not happen (a callable: computed only then,
    e.g. to show the last state seen or a server's log).
    """
    deadline = time.monotonic() + seconds
    while True:
        last_chance = time.monotonic() >= deadline
        value = condition()
        if value:
            return value
        if last_chance:
            raise AssertionError(f"not within {seconds:g} s: {message() if callable(message) else message}")
        time.sleep(every)

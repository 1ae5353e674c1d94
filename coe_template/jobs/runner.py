"""A runner: a thread in each process that claims leased work one piece at a time, works it, and stops politely.

What is the same for every kind of leased work lives here: the loop and its backoff
(:func:`~coe_template.jobs.leases.work_until_stopped`), a lease owner made afresh on
start (a forked server worker must not share its parent's), a claim handed straight back
when a stop began while it was being taken, and a stop that lets the work in hand finish
within a grace period and gives it back otherwise, so nobody waits for a lease to run out.
A kind (:class:`~coe_template.batch.runner.BatchRunner`,
:class:`~coe_template.trainer.TrainingRunner`) says how to claim, work and give back.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar, Generic, TypeVar

from coe_template.jobs.leases import owner_id, work_until_stopped

#: How long a stopping runner may take to finish the work in hand before it gives it back.
GRACE_SECONDS = 5.0

C = TypeVar("C")


class Runner(Generic[C]):
    """The loop, start and stop of a runner whose claims are ``C``."""

    #: Names the runner in its thread's name and its outage lines ("batch", "training").
    kind: ClassVar[str]
    #: Names one piece of its work in a failure's line ("batch chunk", "training job").
    unit: ClassVar[str]

    def __init__(self, wake: threading.Event, poll_seconds: float) -> None:
        #: Set when work is created in this process (or on a stop): an idle runner looks at once.
        self.wake = wake
        self.poll_seconds = poll_seconds
        self.owner = owner_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._current: C | None = None  # the work in hand, for stop() to give back
        self._claimed_at = 0.0  # when it was taken (monotonic)

    # --- what a kind says --------------------------------------------------------------------------

    def _claim(self) -> C | None:
        raise NotImplementedError

    def _work(self, claim: C) -> None:
        raise NotImplementedError

    def _give_back(self, claim: C, ran_seconds: float) -> bool:
        """Release the claim (a stop); whether it was still held."""
        raise NotImplementedError

    def _turn(self) -> object | None:
        """A turn of the loop; None when there was nothing to do."""
        return self.run_once()

    def _idle(self) -> None:
        """Called when a turn found nothing to do, before waiting."""

    def _stopped(self, in_hand: C | None, given_back: C | None, ran_seconds: float, grace: float) -> None:
        """Told how a stop went: the work in hand finished within ``grace`` (the thread is done), or
        not (``given_back``: the claim released after ``ran_seconds``, if it was still held)."""

    # --- the same for every kind -------------------------------------------------------------------

    def run_once(self) -> C | None:
        """Claim and work one piece; None when there is nothing to do (or the runner stops)."""
        claim = self._claim()
        if claim is None:
            return None
        with self._lock:
            if self._stop.is_set():  # stop() began while the claim was being taken: hand it straight back
                self._give_back(claim, 0.0)
                return None
            self._current = claim
            self._claimed_at = time.monotonic()
        try:
            self._work(claim)
        finally:
            with self._lock:
                self._current = None
        return claim

    def _loop(self) -> None:
        work_until_stopped(
            self._stop, self._turn, self.wake, self.poll_seconds, self.kind, self.unit, before_idle=self._idle
        )

    def start(self) -> None:
        self._stop.clear()
        self.owner = owner_id()  # after a fork
        self._thread = threading.Thread(target=self._loop, name=f"{self.kind}-runner", daemon=True)
        self._thread.start()

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Take no more work; finish the piece in hand within ``grace`` seconds, else give it back.

        Work given back is pending again at once; if the runner's thread still finishes it,
        its completion is refused (the claim no longer holds).
        """
        self._stop.set()
        self.wake.set()
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            in_hand = self._current
        thread.join(timeout=grace)
        if not thread.is_alive():
            self._stopped(in_hand, None, 0.0, grace)
            return
        with self._lock:  # a claim taken from here on is handed back by run_once itself
            claim, ran = self._current, time.monotonic() - self._claimed_at
        given = claim if claim is not None and self._give_back(claim, ran) else None
        self._stopped(in_hand, given, ran, grace)

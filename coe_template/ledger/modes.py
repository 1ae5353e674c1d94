"""``COE_PREDICTION_LOG``: what the ledger keeps of each prediction.

- ``off``: nothing.
- ``hash`` (the default): the id, time, model, version, alias, source, tag, probabilities,
  latency, request id, correlation id and the sha256 of the text, never the text.
- ``full``: the same and the text itself.
- ``sample:<fraction>``: a random share (``0 < fraction <= 1``) of predictions, each kept as in
  ``hash`` mode. Sampling is for volume; the text is kept only when an operator asks for it by
  name (``full``), never as a side effect of a sample.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

OFF, HASH, FULL, SAMPLE = "off", "hash", "full", "sample"
#: In words, for the configuration page and the parser's message.
ACCEPTS = "`off`, `hash`, `full`, or `sample:<fraction>` (0 < fraction ≤ 1, kept as in `hash`)"


@dataclass(frozen=True)
class LogMode:
    """What is kept: ``kind`` is off, hash or full; ``fraction`` the share of predictions kept."""

    kind: str = HASH
    fraction: float = 1.0

    @property
    def keeps_any(self) -> bool:
        return self.kind != OFF

    @property
    def keeps_text(self) -> bool:
        return self.kind == FULL

    def chosen(self, draw: float | None = None) -> bool:
        """Whether to keep one prediction (always, unless sampling: then with probability ``fraction``)."""
        if self.kind == OFF:
            return False
        if self.fraction >= 1.0:
            return True
        return (random.random() if draw is None else draw) < self.fraction  # noqa: S311  not a secret

    def __str__(self) -> str:
        return f"{SAMPLE}:{self.fraction:g}" if self.fraction < 1.0 else self.kind


#: Nothing recorded (the default of what the domain builds by itself: batch jobs made by a test, say).
NOTHING = LogMode(OFF)


def parse_mode(value: str) -> LogMode:
    """The mode a ``COE_PREDICTION_LOG`` value names; ValueError (saying what is accepted) otherwise."""
    text = value.strip().lower()
    if text in (OFF, HASH, FULL):
        return LogMode(text)
    if text.startswith(f"{SAMPLE}:"):
        try:
            fraction = float(text.removeprefix(f"{SAMPLE}:"))
        except ValueError:
            fraction = math.nan
        if 0.0 < fraction <= 1.0:
            return LogMode(HASH, fraction)
    raise ValueError(f"must be {ACCEPTS}, not {value!r}")

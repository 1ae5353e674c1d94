"""Prediction ids: UUIDv7 (RFC 9562), so that ids sort by the time they were made."""

from __future__ import annotations

import os
import threading
import time
import uuid


def new_prediction_id(now_ms: int | None = None) -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, the version and variant bits, 74 random bits.

    Without ``now_ms``, each id a process makes is greater than the one before (RFC 9562's
    monotonic method 2: within one millisecond the last id plus a random step), so the texts of a
    request keep their order in the ledger too.
    """
    global _last
    if now_ms is not None:
        return str(uuid.UUID(int=_bits(now_ms)))
    with _lock:
        value = _bits(time.time_ns() // 1_000_000)
        if value >> 80 <= _last >> 80:  # the same millisecond (or the clock went back): step on
            step = 1 + os.urandom(1)[0]
            value = _bits(_last >> 80, ((_last >> 64 & 0xFFF) << 62 | _last & (1 << 62) - 1) + step)
        _last = value
    return str(uuid.UUID(int=value))


#: The 74 random bits (12 of rand_a, 62 of rand_b) as one number: version and variant bits excluded.
_RANDOM = (1 << 74) - 1
_lock = threading.Lock()
_last = 0


def _bits(ms: int, random_bits: int | None = None) -> int:
    """The id of ``ms`` with ``random_bits`` (74 of them; fresh ones unless given) in place."""
    if random_bits is None:
        random_bits = int.from_bytes(os.urandom(10), "big") & _RANDOM
    random_bits &= _RANDOM  # an overflowing step wraps, as rare as 2**66 ids in one millisecond
    rand_a, rand_b = random_bits >> 62, random_bits & ((1 << 62) - 1)
    return (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0x2 << 62 | rand_b


def milliseconds(prediction_id: str) -> int:
    """When a UUIDv7 was made, in Unix milliseconds (its first 48 bits)."""
    return uuid.UUID(prediction_id).int >> 80


def lowest_id(ms: int) -> str:
    """The smallest UUIDv7 of a millisecond: ``id >= lowest_id(t)`` selects what was made from ``t`` on."""
    return str(uuid.UUID(int=(ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0x2 << 62))

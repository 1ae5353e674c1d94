"""Prediction ids: UUIDv7 (RFC 9562), so that ids sort by the time they were made."""

from __future__ import annotations

import os
import time
import uuid


def new_prediction_id(now_ms: int | None = None) -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, the version and variant bits, 74 random bits."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return str(uuid.UUID(int=value))


def milliseconds(prediction_id: str) -> int:
    """When a UUIDv7 was made, in Unix milliseconds (its first 48 bits)."""
    return uuid.UUID(prediction_id).int >> 80


def lowest_id(ms: int) -> str:
    """The smallest UUIDv7 of a millisecond: ``id >= lowest_id(t)`` selects what was made from ``t`` on."""
    return str(uuid.UUID(int=(ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0x2 << 62))

"""What the ledger holds of one prediction, as read back (:class:`Entry`), and what a server
process hands its writer for one (:class:`Answered`: cheap to make, nothing computed yet)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coe_template.ledger import ids
from coe_template.ledger.modes import LogMode
from coe_template.model.data import text_sha256


@dataclass(frozen=True)
class Answered:
    """One prediction as answered, queued in the request's thread: no hashing, no copying, no I/O.

    The writer's thread makes the row from it (the text's sha256, the text only in ``full`` mode).
    """

    id: str
    model_name: str
    model_version: int
    alias: str | None
    source: str
    tag: str
    probabilities: dict[str, float]
    latency_ms: float | None
    request_id: str | None
    correlation_id: str | None
    text: str
    batch_job_id: str | None = None

    def row(self, mode: LogMode) -> dict[str, Any]:
        """The ``predictions`` row, as ``mode`` keeps it."""
        return {
            "id": self.id,
            "created_at": datetime.fromtimestamp(ids.milliseconds(self.id) / 1000, UTC),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "alias": self.alias,
            "source": self.source,
            "tag": self.tag,
            "probabilities": self.probabilities,
            "latency_ms": self.latency_ms,
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
            "batch_job_id": self.batch_job_id,
            "text_sha256": text_sha256(self.text),  # what ``hash`` mode keeps instead of the text
            "text": self.text if mode.keeps_text else None,
        }


@dataclass(frozen=True)
class Entry:
    """A prediction on record: what was answered, by which version, when, to which request."""

    id: str
    created_at: datetime
    model_name: str
    model_version: int
    alias: str | None
    source: str
    tag: str
    probabilities: dict[str, float]
    latency_ms: float | None
    request_id: str | None
    correlation_id: str | None
    batch_job_id: str | None
    text_sha256: str
    text: str | None

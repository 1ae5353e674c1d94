"""The labels' table: the true tag of a prediction on record, one per prediction (ground truth)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from coe_template.registry.schema import Base


class LabelRow(Base):
    """A prediction's true tag. A prediction expired from the ledger takes its label along (CASCADE):
    a label is only meaningful beside what was predicted."""

    __tablename__ = "prediction_labels"
    __table_args__ = (Index("ix_prediction_labels_created", "created_at"),)

    prediction_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True
    )
    true_tag: Mapped[str] = mapped_column(String(64))
    #: Where the label came from (``support-ticket``, ``review``): the client's word, bounded.
    source: Mapped[str | None] = mapped_column(String(64))
    #: When the prediction was first labelled: the label delay is this minus the prediction's time.
    created_at: Mapped[datetime]
    #: When the label was last replaced by a correction; None while it never was.
    corrected_at: Mapped[datetime | None]
    #: Who labelled (or corrected) it: a digest of the key sent (``key:…``), never the key.
    labelled_by: Mapped[str] = mapped_column(String(64))

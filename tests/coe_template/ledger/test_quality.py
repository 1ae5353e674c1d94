"""Live quality from the ledger and its labels: scikit-learn's figures, from SQL's confusion counts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sqlalchemy import update

from coe_template.errors import InvalidInput
from coe_template.ledger.label_schema import LabelRow
from coe_template.ledger.labels import LabelRequest, Labels
from coe_template.ledger.quality import NO_LABELS, LiveQuality, figures
from tests.coe_template.ledger.rows import WHEN, later, predicted

TAGS = ("computer-vision", "mlops", "natural-language-processing", "other")


@pytest.mark.filterwarnings("ignore:A single label was found")
@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(TAGS)), min_size=1, max_size=60))
def test_the_figures_of_confusion_counts_are_scikit_learns(pairs):
    counts: dict[tuple[str, str], int] = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    predicted_tags, true_tags = [p for p, _ in pairs], [t for _, t in pairs]
    found = figures(counts)
    assert found is not None
    tags = sorted(set(predicted_tags) | set(true_tags))
    assert found.tags == tags
    assert found.matrix == confusion_matrix(true_tags, predicted_tags, labels=tags).tolist()
    assert found.accuracy == pytest.approx(accuracy_score(true_tags, predicted_tags))
    assert found.f1_weighted == pytest.approx(
        f1_score(true_tags, predicted_tags, labels=tags, average="weighted", zero_division=0)
    )
    _, _, f1s, supports = precision_recall_fscore_support(
        true_tags, predicted_tags, labels=tags, zero_division=0
    )
    assert [found.per_tag[t]["f1"] for t in tags] == pytest.approx(list(f1s))
    assert [found.per_tag[t]["support"] for t in tags] == list(supports)


def asdict_of(**fields: Any) -> dict[str, Any]:
    """What a :class:`Figures` holds, as a dict whose values may be ``pytest.approx``."""
    return fields


def test_no_counts_are_no_figures_not_zeros():
    assert figures({}) is None


def test_a_version_without_labels_says_so(engine):
    predicted(engine, "mlops")
    quality = LiveQuality(engine).of_version("project-tagger", 1)
    assert (quality.predictions, quality.labelled, quality.labelled_share, quality.figures) == (
        1,
        0,
        0.0,
        None,
    )
    assert (quality.delay_p50, quality.delay_p95, quality.message) == (None, None, NO_LABELS)
    nothing = LiveQuality(engine).of_version("project-tagger", 2)
    assert (nothing.predictions, nothing.labelled_share, nothing.message) == (0, None, NO_LABELS)


def label_at(engine, prediction_id: str, true_tag: str, seconds: float) -> None:
    """Label a prediction as if ``seconds`` after it was made (the label's own time set straight)."""
    Labels(engine).record([LabelRequest(true_tag, prediction_id=prediction_id)], "key:test")
    with engine.begin() as connection:
        connection.execute(
            update(LabelRow.__table__)
            .where(LabelRow.prediction_id == prediction_id)
            .values(created_at=later(seconds))
        )


def test_a_versions_quality_in_a_period(engine):
    # Version 1: predicted mlops, mlops, other, other (+ one unlabelled); truth mlops, other, other, computer-vision.
    pairs = [
        ("mlops", "mlops", 10),
        ("mlops", "other", 20),
        ("other", "other", 30),
        ("other", "computer-vision", 40),
    ]
    for tag, true, seconds in pairs:
        label_at(engine, predicted(engine, tag), true, seconds)
    predicted(engine, "mlops")
    label_at(engine, predicted(engine, "mlops", version=2), "other", 5)  # another version's
    label_at(engine, predicted(engine, "other", at=WHEN + timedelta(days=1)), "other", 86400 + 1)  # later
    quality = LiveQuality(engine).of_version("project-tagger", 1, until=WHEN + timedelta(hours=1))
    assert (quality.predictions, quality.labelled, quality.labelled_share) == (5, 4, 0.8)
    assert quality.message == "4 of 5 predictions labelled"
    assert quality.figures is not None
    assert asdict(quality.figures) == asdict_of(
        labelled=4,
        accuracy=0.5,
        f1_weighted=pytest.approx((2 / 3 * 1 + 0.5 * 2 + 0 * 1) / 4),
        per_tag={
            "computer-vision": {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1},
            "mlops": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
            "other": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        },
        tags=["computer-vision", "mlops", "other"],
        matrix=[[0, 0, 1], [0, 1, 0], [0, 1, 1]],
    )
    assert [quality.delay_p50, quality.delay_p95] == pytest.approx([20, 40], abs=0.01)
    everything = LiveQuality(engine).of_version("project-tagger", 1, since=WHEN)
    assert (everything.predictions, everything.labelled) == (6, 5)
    # Delays 1, 10, 20, 30, 40 s (the later one's label came 1 s after it): nearest ranks 3 and 5.
    assert [everything.delay_p50, everything.delay_p95] == pytest.approx([20, 40], abs=0.01)
    assert LiveQuality(engine).by_version() == {
        ("project-tagger", 1): {
            ("mlops", "mlops"): 1,
            ("mlops", "other"): 1,
            ("other", "other"): 2,
            ("other", "computer-vision"): 1,
        },
        ("project-tagger", 2): {("mlops", "other"): 1},
    }


def test_a_period_must_end_after_it_starts(engine):
    with pytest.raises(InvalidInput) as refused:
        LiveQuality(engine).of_version("project-tagger", 1, since=WHEN, until=WHEN)
    assert str(refused.value) == (
        "since (2026-12-01T12:00:00+00:00) must be before until (2026-12-01T12:00:00+00:00)"
    )

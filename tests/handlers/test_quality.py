"""``GET /models/{name}/versions/{version}/quality`` and its gauges in ``/metrics``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coe_template.ledger.labels import LabelRequest, Labels
from coe_template.ledger.quality import NO_LABELS
from tests.coe_template.ledger.rows import WHEN, predicted
from tests.conftest import MODEL
from tests.handlers.test_metrics import scrape

QUALITY = f"/models/{MODEL}/versions/1/quality"


def nothing(predictions: int, since=None, until=None) -> dict:
    """A version's quality without a label: counts, a message, and null figures (never zeros)."""
    return {
        "model": MODEL,
        "version": 1,
        "since": since,
        "until": until,
        "predictions": predictions,
        "labelled": 0,
        "labelled_share": 0.0 if predictions else None,
        "message": NO_LABELS,
        "accuracy": None,
        "f1_weighted": None,
        "per_tag": None,
        "confusion": None,
        "label_delay_seconds": None,
    }


def test_a_version_without_labels_says_so(registry_store, registry_client, assert_envelope):
    assert assert_envelope(registry_client.get(QUALITY), path=QUALITY) == {"quality": nothing(0)}
    predicted(registry_store.engine, "mlops")
    assert assert_envelope(registry_client.get(QUALITY)) == {"quality": nothing(1)}


def test_a_versions_quality_and_its_gauges(registry_store, registry_client, assert_envelope):
    engine = registry_store.engine
    pairs = [("mlops", "mlops"), ("mlops", "other"), ("other", "other"), ("other", "computer-vision")]
    ids = [predicted(engine, tag) for tag, _ in pairs]
    predicted(engine, "mlops", at=WHEN + timedelta(days=1))  # after the period asked for, and unlabelled
    Labels(engine).record(
        [LabelRequest(true, prediction_id=i) for i, (_, true) in zip(ids, pairs, strict=True)], "key:test"
    )
    url = f"{QUALITY}?since=2026-12-01T13:00:00%2B01:00&until=2026-12-01T13:00:00Z"
    quality = assert_envelope(registry_client.get(url))["quality"]
    delay = quality.pop("label_delay_seconds")
    assert quality == {
        "model": MODEL,
        "version": 1,
        "since": "2026-12-01T12:00:00.000+00:00",
        "until": "2026-12-01T13:00:00.000+00:00",
        "predictions": 4,
        "labelled": 4,
        "labelled_share": 1.0,
        "message": "4 of 4 predictions labelled",
        "accuracy": 0.5,
        "f1_weighted": pytest.approx((2 / 3 + 0.5 * 2) / 4),
        "per_tag": {
            "computer-vision": {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1},
            "mlops": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
            "other": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        },
        "confusion": {
            "tags": ["computer-vision", "mlops", "other"],
            "matrix": [[0, 0, 1], [0, 1, 0], [0, 1, 1]],
        },
    }
    assert (
        set(delay) == {"p50", "p95"} and 0 < delay["p50"] <= delay["p95"]
    )  # labelled now, predicted on WHEN
    samples = scrape(registry_client)
    version = {"model": MODEL, "version": "1"}
    assert {
        name: samples[(f"coe_model_labelled_{name}", frozenset(version.items()))]
        for name in ("predictions", "accuracy", "f1_weighted")
    } == {"predictions": 4.0, "accuracy": 0.5, "f1_weighted": pytest.approx((2 / 3 + 0.5 * 2) / 4)}


@pytest.mark.parametrize(
    ("query", "detail", "kind"),
    [
        ("since=yesterday", "'yesterday' is not a 'date-time' - query parameter 'since'", None),
        (
            "until=2026-12-01T13:00:00",
            "'2026-12-01T13:00:00' is not a 'date-time' - query parameter 'until'",  # no offset: ambiguous
            None,
        ),
        (
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since (2026-12-02T00:00:00+00:00) must be before until (2026-12-01T00:00:00+00:00)",
            "invalid-input",
        ),
    ],
)
def test_a_period_that_cannot_be_read_is_refused(registry_client, assert_problem, query, detail, kind):
    assert_problem(registry_client.get(f"{QUALITY}?{query}"), 400, detail, kind)


def test_an_unknown_version_is_not_found(registry_client, assert_problem):
    assert_problem(
        registry_client.get(f"/models/{MODEL}/versions/9/quality"), 404, f"model {MODEL!r} has no version 9"
    )

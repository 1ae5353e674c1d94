"""Labels against the ledger: one per prediction, idempotent, corrected only when asked, refusals per item."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coe_template.errors import InvalidInput
from coe_template.ledger.label_schema import LabelRow
from coe_template.ledger.labels import LabelOutcome, LabelRequest, Labels
from coe_template.ledger.training_data import labelled_texts
from coe_template.model.data import Dataset, with_labels
from tests.coe_template.ledger.rows import predicted

WHO = "key:0123456789abcdef"


def stored(engine):
    with engine.connect() as connection:
        rows = (
            connection.execute(select(LabelRow.__table__).order_by(LabelRow.prediction_id)).mappings().all()
        )
    return [dict(row) for row in rows]


def test_a_label_is_recorded_once_and_sending_it_again_changes_nothing(engine):
    labels = Labels(engine)
    first = predicted(engine, "mlops")
    request = LabelRequest("computer-vision", prediction_id=first, source="review")
    assert labels.record([request], WHO) == [LabelOutcome("created", first, None, "computer-vision")]
    before = stored(engine)
    assert [
        (r["prediction_id"], r["true_tag"], r["source"], r["corrected_at"], r["labelled_by"]) for r in before
    ] == [(first, "computer-vision", "review", None, WHO)]
    assert (
        labels.record([request, request], WHO)
        == [LabelOutcome("unchanged", first, None, "computer-vision")] * 2
    )
    assert stored(engine) == before


def test_another_label_is_a_conflict_unless_it_says_it_is_a_correction(engine):
    labels = Labels(engine)
    first = predicted(engine, "mlops")
    labels.record([LabelRequest("mlops", prediction_id=first)], WHO)
    assert labels.record([LabelRequest("other", prediction_id=first)], WHO) == [
        LabelOutcome(
            "conflict",
            first,
            None,
            "other",
            f"prediction {first} is already labelled 'mlops': send correction: true to replace its label",
        )
    ]
    assert [r["true_tag"] for r in stored(engine)] == ["mlops"]
    assert labels.record([LabelRequest("other", prediction_id=first, correction=True)], "key:other") == [
        LabelOutcome("corrected", first, None, "other")
    ]
    [row] = stored(engine)
    assert (row["true_tag"], row["labelled_by"], row["corrected_at"] is not None) == (
        "other",
        "key:other",
        True,
    )


def test_a_correlation_id_labels_its_one_prediction_and_names_several_as_ambiguous(engine):
    labels = Labels(engine)
    only = predicted(engine, "mlops", correlation_id="ticket-1")
    twins = sorted(predicted(engine, "mlops", correlation_id="ticket-2") for _ in range(2))
    outcomes = labels.record(
        [LabelRequest("mlops", correlation_id="ticket-1"), LabelRequest("mlops", correlation_id="ticket-2")],
        WHO,
    )
    assert outcomes == [
        LabelOutcome("created", only, "ticket-1", "mlops"),
        LabelOutcome(
            "ambiguous",
            None,
            "ticket-2",
            "mlops",
            f"2 predictions on record have the id 'ticket-2' ({twins[0]}, {twins[1]}): label them by prediction_id",
        ),
    ]


def test_unknown_malformed_ids_and_foreign_tags_are_refused_item_by_item(engine):
    labels = Labels(engine)
    known = predicted(engine, "mlops", version=3)
    missing = "01890000-0000-7000-8000-000000000000"
    outcomes = labels.record(
        [
            LabelRequest("mlops", prediction_id="not-a-uuid"),
            LabelRequest("mlops", prediction_id=missing),
            LabelRequest("mlops", correlation_id="nobody"),
            LabelRequest("speech", prediction_id=known),
            LabelRequest("mlops", prediction_id=known.upper()),
        ],
        WHO,
    )
    assert outcomes == [
        LabelOutcome(
            "invalid_id", None, None, "mlops", "prediction_id is not a UUID (the ledger's ids are UUIDv7)"
        ),
        LabelOutcome("not_found", None, None, "mlops", f"no prediction {missing} on record"),
        LabelOutcome("not_found", None, "nobody", "mlops", "no prediction on record has the id 'nobody'"),
        LabelOutcome(
            "unknown_tag",
            known,
            None,
            "speech",
            "'speech' is not a tag of 'project-tagger' version 3: "
            "one of computer-vision, mlops, natural-language-processing, other",
        ),
        LabelOutcome("created", known, None, "mlops"),
    ]
    assert [r["prediction_id"] for r in stored(engine)] == [known]


@pytest.mark.parametrize(
    "item",
    [{"true_tag": "mlops"}, {"true_tag": "mlops", "id": "a", "prediction_id": "b"}],
    ids=["neither", "both"],
)
def test_an_item_must_name_its_prediction_exactly_one_way(item):
    with pytest.raises(InvalidInput) as refused:
        LabelRequest.parse(4, item)
    assert str(refused.value) == (
        "labels[4]: name the prediction by prediction_id (the ledger's id) or by id "
        "(your own id for the text), exactly one of them"
    )


def test_training_reads_the_labelled_rows_with_text_and_a_label_beats_the_datas_row(engine):
    labels = Labels(engine)
    kept = predicted(engine, "mlops", text="Serving models on Kubernetes")
    textless = predicted(engine, "mlops")  # logged without its text: nothing to learn from
    again = predicted(engine, "mlops", text="Serving models on Kubernetes")
    other_model = predicted(engine, "mlops", model="another", text="Elsewhere")
    labels.record([LabelRequest("other", prediction_id=p) for p in (kept, textless, other_model)], WHO)
    labels.record([LabelRequest("computer-vision", prediction_id=again)], WHO)
    rows = labelled_texts(engine, "project-tagger")
    assert rows == [
        ("Serving models on Kubernetes", "other"),
        ("Serving models on Kubernetes", "computer-vision"),
    ]
    bundled = Dataset(
        texts=["Serving models on Kubernetes", "Parsing text", "Parsing text"],
        tags=["mlops", "natural-language-processing", "natural-language-processing"],
        fingerprint={"rows": 3, "sha256": "abc"},
    )
    merged = with_labels(bundled, rows + [("Tagging images", "computer-vision"), ("Speech", "robotics")])
    assert merged == Dataset(
        texts=["Parsing text", "Parsing text", "Serving models on Kubernetes", "Tagging images", "Speech"],
        tags=[
            "natural-language-processing",
            "natural-language-processing",
            "computer-vision",
            "computer-vision",
            "other",
        ],
        fingerprint={
            "rows": 5,
            "sha256": "abc",
            "data": "bundled+labels",
            "bundled": 2,
            "labelled": 3,
            "duplicates_dropped": 2,
        },
    )

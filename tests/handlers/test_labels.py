"""``POST /labels``: ground truth for predictions on record, each item answered on its own."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coe_template.ledger.label_schema import LabelRow
from tests.coe_template.ledger.rows import predicted
from tests.conftest import ADMIN, READ_KEY
from tests.problems import shortened

#: One more item than a request may carry (the spec's maxItems).
TOO_MANY = [{"id": "a", "true_tag": "mlops"}] * 1001
#: What the admin key's labels are recorded as: a digest of the key, never the key.
ADMIN_ID = "key:82007d29a6e0686708f2ef128b4d5d22"


def post(client, *labels: dict, headers: dict | None = None):
    return client.post(
        "/labels", json={"labels": list(labels)}, headers=ADMIN if headers is None else headers
    )


def result(status: str, true_tag: str, prediction_id=None, id=None, error=None) -> dict:
    return {"status": status, "prediction_id": prediction_id, "id": id, "true_tag": true_tag, "error": error}


def test_labels_are_recorded_once_corrected_on_request_and_refused_item_by_item(
    registry_store, registry_client, assert_envelope
):
    engine = registry_store.engine
    first = predicted(engine, "mlops", correlation_id="ticket-1")
    twins = sorted(predicted(engine, "other", correlation_id="twin") for _ in range(2))
    missing = "01890000-0000-7000-8000-000000000000"
    data = assert_envelope(
        post(
            registry_client,
            {"id": "ticket-1", "true_tag": "computer-vision", "source": "review"},
            {"prediction_id": first, "true_tag": "computer-vision"},
            {"prediction_id": first, "true_tag": "other"},
            {"id": "twin", "true_tag": "other"},
            {"prediction_id": missing, "true_tag": "other"},
            {"prediction_id": "12345", "true_tag": "other"},
            {"prediction_id": first, "true_tag": "robotics", "correction": True},
        ),
        method="POST",
        path="/labels",
    )
    assert data == {
        "counts": {
            "created": 1,
            "unchanged": 1,
            "conflict": 1,
            "ambiguous": 1,
            "not_found": 1,
            "invalid_id": 1,
            "unknown_tag": 1,
        },
        "results": [
            result("created", "computer-vision", first, "ticket-1"),
            result("unchanged", "computer-vision", first),
            result(
                "conflict",
                "other",
                first,
                error=f"prediction {first} is already labelled 'computer-vision': "
                "send correction: true to replace its label",
            ),
            result(
                "ambiguous",
                "other",
                id="twin",
                error=f"2 predictions on record have the id 'twin' ({twins[0]}, {twins[1]}): "
                "label them by prediction_id",
            ),
            result("not_found", "other", error=f"no prediction {missing} on record"),
            result("invalid_id", "other", error="prediction_id is not a UUID (the ledger's ids are UUIDv7)"),
            result(
                "unknown_tag",
                "robotics",
                first,
                error="'robotics' is not a tag of 'project-tagger' version 1: "
                "one of computer-vision, mlops, natural-language-processing, other",
            ),
        ],
    }
    data = assert_envelope(
        post(registry_client, {"prediction_id": first, "true_tag": "other", "correction": True}),
        method="POST",
    )
    assert data == {"counts": {"corrected": 1}, "results": [result("corrected", "other", first)]}
    with engine.connect() as connection:
        [row] = connection.execute(select(LabelRow.__table__)).mappings().all()
    assert (row["prediction_id"], row["true_tag"], row["source"], row["labelled_by"]) == (
        first,
        "other",
        None,
        ADMIN_ID,
    )


@pytest.mark.parametrize(
    ("body", "detail", "kind"),
    [
        ({}, "'labels' is a required property", None),
        ({"labels": []}, "[] should be non-empty - 'labels'", None),
        ({"labels": TOO_MANY}, shortened(f"{TOO_MANY} is too long - 'labels'"), None),
        (
            {"labels": [{"id": "a", "true_tag": "mlops"}, {"true_tag": "mlops"}]},
            "labels[1]: name the prediction by prediction_id (the ledger's id) or by id "
            "(your own id for the text), exactly one of them",
            "invalid-input",
        ),
        (
            {"labels": [{"id": "a", "true_tag": "mlops", "source": "\n"}]},
            "'\\n' does not match '^[A-Za-z0-9][A-Za-z0-9 ._:/@-]{0,63}$' - 'labels.0.source'",
            None,
        ),
    ],
    ids=["no-labels", "empty", "too-many", "neither-id", "bad-source"],
)
def test_a_body_malformed_as_a_whole_is_refused(registry_client, assert_problem, body, detail, kind):
    response = registry_client.post("/labels", json=body, headers=ADMIN)
    assert_problem(response, 400, detail, kind)


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "No authorization token provided"),
        ({"Authorization": f"Bearer {READ_KEY}"}, 403, "this key may only read: send an admin key"),
    ],
)
def test_labelling_needs_an_admin_key(registry_client, assert_problem, headers, status, detail):
    assert_problem(post(registry_client, {"id": "a", "true_tag": "mlops"}, headers=headers), status, detail)


#: A project the bundled data says nothing about: what version 1 tags it as is a guess.
UNSEEN = "Quokka wombat platypus echidna survey"


def test_a_version_trained_with_the_labels_fixes_what_the_first_one_got_wrong(
    registry_store, registry_client, assert_envelope
):
    from tests.handlers.test_versions import VERSIONS, wait_for_training

    def tag_of(version: int) -> str:
        body = {"texts": [{"text": UNSEEN}]}
        answer = assert_envelope(registry_client.post(f"{VERSIONS}/{version}/predictions", json=body), "POST")
        return answer["predictions"][0]["predicted_tag"]

    wrong = tag_of(1)
    true_tag = "computer-vision" if wrong != "computer-vision" else "natural-language-processing"
    texts = [UNSEEN] + [f"{UNSEEN} field note {i}" for i in range(60)]
    ids = [predicted(registry_store.engine, wrong, text=text) for text in texts]
    duplicate = predicted(registry_store.engine, wrong, text=texts[1])  # the same text predicted twice
    labels = [{"prediction_id": i, "true_tag": true_tag} for i in [*ids, duplicate]]
    assert assert_envelope(post(registry_client, *labels), "POST")["counts"] == {"created": 62}
    response = registry_client.post(VERSIONS, json={"data": "bundled+labels"}, headers=ADMIN)
    assert_envelope(response, method="POST", status=202)
    version = wait_for_training(registry_client, response.headers["location"])
    assert version["status"] == "ready", version["error"]
    assert {k: v for k, v in version["dataset"].items() if k != "sha256"} == {
        "rows": 1835 + 61,
        "data": "bundled+labels",
        "bundled": 1835,
        "labelled": 61,
        "duplicates_dropped": 1,
    }
    assert (wrong, tag_of(3)) == (wrong, true_tag)

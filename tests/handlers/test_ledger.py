"""The prediction ledger through the API: ids and correlation ids answered, what was answered read back
(``GET /predictions/{prediction-id}``, ``GET /models/{model-name}/predictions``), what each mode keeps."""

from __future__ import annotations

import hashlib

import pytest

from coe_template.ledger.modes import LogMode
from tests.conftest import MODEL, READ_KEY
from tests.prediction_ids import without_ids
from tests.waiting import wait_until

TEXTS = ["ML applied to image classification.", "Deploying models in production with Kubernetes."]
PINNED = f"/models/{MODEL}/versions/2/predictions"


def flushed(client) -> None:
    """What the writer's thread would write within half a second, written now."""
    client.app.app.extensions["coe_template"].recorder.flush()


def post(client, path: str = "/predictions", ids: tuple[str | None, ...] = ("ticket-1", None), headers=None):
    texts = [{"text": t} | ({"id": i} if i else {}) for t, i in zip(TEXTS, ids, strict=True)]
    return client.post(path, json={"texts": texts}, headers={"X-Request-ID": "ledger-1", **(headers or {})})


def recorded(client, prediction_id: str, headers=None) -> dict:
    response = client.get(f"/predictions/{prediction_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["prediction"]


def expected(
    answer: dict, prediction: dict, text: str, alias: str | None, source: str, kept: str | None
) -> dict:
    return {
        "prediction_id": prediction["prediction_id"],
        "model_name": MODEL,
        "model_version": answer["model"]["version"],
        "alias": alias,
        "source": source,
        "predicted_tag": prediction["predicted_tag"],
        "probabilities": prediction["probabilities"],
        "request_id": "ledger-1",
        "id": prediction.get("id"),
        "batch_job_id": None,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "text": kept,
    }


def without_times(record: dict) -> dict:
    assert isinstance(record.pop("latency_ms"), float)
    assert record.pop("created_at").endswith("+00:00")
    return record


@pytest.mark.parametrize(
    ("path", "alias", "source"), [("/predictions", "production", "realtime"), (PINNED, None, "pinned")]
)
def test_each_prediction_is_recorded_as_answered(client_for, path, alias, source):
    client = client_for()
    response = post(client, path)
    assert response.status_code == 200, response.text
    answer = response.json()["data"]
    assert [p.get("id") for p in answer["predictions"]] == ["ticket-1", None]  # echoed when sent
    assert [p["input_text"] for p in without_ids(response)] == TEXTS
    flushed(client)
    for text, prediction in zip(TEXTS, answer["predictions"], strict=True):
        record = without_times(recorded(client, prediction["prediction_id"]))
        assert record == expected(answer, prediction, text, alias, source, None)


def test_full_mode_keeps_the_text(client_for):
    client = client_for(prediction_log=LogMode("full"))
    answer = post(client).json()["data"]
    flushed(client)
    first = answer["predictions"][0]
    assert without_times(recorded(client, first["prediction_id"])) == expected(
        answer, first, TEXTS[0], "production", "realtime", TEXTS[0]
    )


def test_off_records_nothing_but_still_gives_ids(client_for, assert_problem):
    client = client_for(prediction_log=LogMode("off"))
    response = post(client)
    assert response.status_code == 200
    flushed(client)
    for prediction in response.json()["data"]["predictions"]:
        missing = client.get(f"/predictions/{prediction['prediction_id']}")
        assert_problem(missing, 404, f"prediction {prediction['prediction_id']} not found")


def test_a_malformed_or_unknown_id(client_for, assert_problem):
    client = client_for()
    assert_problem(
        client.get("/predictions/not-an-id"),
        400,
        "'not-an-id' does not match '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' - path parameter 'prediction-id'",
    )
    unknown = "0193a5b2-7c1e-7a3b-9f10-2b7c4d5e6f70"
    assert_problem(client.get(f"/predictions/{unknown}"), 404, f"prediction {unknown} not found")


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        ({"text": "a", "id": ""}, "'' should be non-empty - 'texts.0.id'"),
        ({"text": "a", "id": "has space"}, "'has space' does not match '^[!-~]{1,128}$' - 'texts.0.id'"),
        ({"text": "a", "id": "x" * 129}, f"{'x' * 129!r} is too long - 'texts.0.id'"),
        ({"text": "a", "id": 7}, "7 is not of type 'string' - 'texts.0.id'"),
    ],
)
def test_a_bad_correlation_id_is_refused(client_for, assert_problem, item, detail):
    assert_problem(client_for().post("/predictions", json={"texts": [item]}), 400, detail)


def test_a_models_predictions_page_by_page(client_for, assert_envelope):
    client = client_for()
    made = []
    for n in range(3):
        made += [
            p["prediction_id"]
            for p in post(client, PINNED if n == 1 else "/predictions").json()["data"]["predictions"]
        ]
    flushed(client)
    pages, token = [], None
    while True:
        query = f"?page_size=4{f'&page_token={token}' if token else ''}"
        data = assert_envelope(client.get(f"/models/{MODEL}/predictions{query}"))
        pages.append([p["prediction_id"] for p in data["predictions"]])
        token = data["next_page_token"]
        if token is None:
            break
    assert pages == [made[:4], made[4:]]
    by_version = assert_envelope(client.get(f"/models/{MODEL}/predictions?version=2"))
    assert [p["prediction_id"] for p in by_version["predictions"]] == made[2:4]
    later = assert_envelope(client.get(f"/models/{MODEL}/predictions?since=2999-01-01T00:00:00Z"))
    assert later == {"predictions": [], "next_page_token": None}
    earlier = assert_envelope(client.get(f"/models/{MODEL}/predictions?until=2000-01-01T00:00:00%2B02:00"))
    assert earlier == {"predictions": [], "next_page_token": None}
    tagged = assert_envelope(client.get(f"/models/{MODEL}/predictions?tag=computer-vision"))
    assert {p["predicted_tag"] for p in tagged["predictions"]} == {"computer-vision"}
    assert assert_envelope(client.get("/models/nobody/predictions")) == {
        "predictions": [],
        "next_page_token": None,
    }


def test_a_bad_time_is_refused(client_for, assert_problem):
    client = client_for()
    assert_problem(
        client.get(f"/models/{MODEL}/predictions?since=yesterday"),
        400,
        "'yesterday' is not a 'date-time' - query parameter 'since'",
    )
    assert_problem(  # a date-time, but before year 1 in UTC
        client.get(f"/models/{MODEL}/predictions?until=0001-01-01T00:00:00%2B14:00"),
        400,
        "until: '0001-01-01T00:00:00+14:00' is not a time like 2026-12-08T00:00:00Z",
        kind="invalid-input",
    )


def test_reading_the_ledger_needs_a_read_key_when_reads_do(client_for, assert_problem):
    client = client_for(require_keys_for_reads=True)
    key = {"Authorization": f"Bearer {READ_KEY}"}
    answer = post(client, headers=key).json()["data"]
    flushed(client)
    prediction_id = answer["predictions"][0]["prediction_id"]
    assert client.get(f"/predictions/{prediction_id}").status_code == 401
    assert recorded(client, prediction_id, headers=key)["prediction_id"] == prediction_id


@pytest.mark.parametrize(("mode", "recorded_items"), [(LogMode("hash"), True), (LogMode("off"), False)])
def test_batch_items_are_recorded_with_their_results(client_for, assert_envelope, mode, recorded_items):
    client = client_for(batch_chunk_size=2, prediction_log=mode)
    items = [{"id": f"item-{n}", "text": text} for n, text in enumerate(TEXTS * 2)]
    job = client.post("/batch-predictions", json={"items": items}).json()["data"]["job"]
    wait_until(
        lambda: client.get(f"/batch-predictions/{job['id']}").json()["data"]["job"]["status"] == "succeeded",
        60,
    )
    results = assert_envelope(client.get(f"/batch-predictions/{job['id']}/results"))["results"]
    one = assert_envelope(client.get(f"/batch-predictions/{job['id']}/results/item-1"))["result"]
    assert one == results[1]
    if not recorded_items:
        assert [r["prediction_id"] for r in results] == [None] * 4
        return
    for item, result in zip(items, results, strict=True):
        record = recorded(client, result["prediction_id"])
        assert record.pop("created_at").endswith("+00:00")
        assert record == {
            "prediction_id": result["prediction_id"],
            "model_name": MODEL,
            "model_version": 1,
            "alias": None,
            "source": "batch",
            "predicted_tag": result["predicted_tag"],
            "probabilities": result["probabilities"],
            "latency_ms": None,
            "request_id": None,
            "id": item["id"],
            "batch_job_id": job["id"],
            "text_sha256": hashlib.sha256(item["text"].encode()).hexdigest(),
            "text": None,
        }


def metric(client, line_start: str) -> float:
    """A sample of ``/metrics`` (0 when not exported yet)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_full_queue_drops_rows_counts_them_and_still_answers(client_for):
    client = client_for(prediction_log_queue=1)
    dropped = 'coe_predictions_log_dropped_total{reason="queue_full"}'
    logged = "coe_predictions_logged_total"
    before = metric(client, dropped), metric(client, logged)
    client.app.app.extensions["coe_template"].recorder.stop()  # nothing takes the queue meanwhile
    response = post(client)
    assert response.status_code == 200
    first, second = (p["prediction_id"] for p in response.json()["data"]["predictions"])
    flushed(client)
    assert (metric(client, dropped), metric(client, logged)) == (before[0] + 1, before[1] + 1)
    assert recorded(client, first)["prediction_id"] == first
    assert client.get(f"/predictions/{second}").status_code == 404

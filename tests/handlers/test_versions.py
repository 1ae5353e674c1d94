import shutil

import pytest

from coe_template.artifacts.runs import MODEL_FILE, runs_dir
from tests.conftest import ADMIN, MODEL, READ_KEY
from tests.prediction_ids import without_ids
from tests.waiting import wait_until

VERSIONS = f"/models/{MODEL}/versions"


def wait_for_training(client, location: str, deadline_seconds: float = 120) -> dict:
    """The version once it is no longer training; AssertionError if it still is after the deadline."""

    def trained() -> dict | None:
        version = client.get(location).json()["data"]["version"]
        return None if version["status"] == "training" else version

    return wait_until(trained, deadline_seconds, f"{location} trained", every=0.1)


def test_lists_versions_oldest_first_with_aliases(registry_client, assert_envelope):
    data = assert_envelope(registry_client.get(VERSIONS))
    assert [(v["version"], v["status"], v["aliases"]) for v in data["versions"]] == [
        (1, "ready", ["production"]),
        (2, "ready", []),
    ]
    assert data["next_page_token"] is None
    for version in data["versions"]:
        assert set(version["artifacts"]) >= {"model.skops", "args.json", "labels.json", "performance.json"}
        assert version["dataset"]["rows"] == 1835


def test_pages_walk_every_version_exactly_once(
    registry_store, registry_client, assert_envelope, trained_model
):
    for _ in range(3):
        registry_store.register(MODEL, trained_model)
    seen, token, pages = [], None, 0
    while True:
        url = f"{VERSIONS}?page_size=2" + (f"&page_token={token}" if token else "")
        data = assert_envelope(registry_client.get(url))
        seen += [v["version"] for v in data["versions"]]
        pages += 1
        token = data["next_page_token"]
        if token is None:
            break
    assert seen == [1, 2, 3, 4, 5]
    assert pages == 3


def test_filter_by_status(registry_store, registry_client, assert_envelope):
    registry_store.archive_version(MODEL, 2)
    data = assert_envelope(registry_client.get(f"{VERSIONS}?status=archived"))
    assert [v["version"] for v in data["versions"]] == [2]
    data = assert_envelope(registry_client.get(f"{VERSIONS}?status=ready"))
    assert [v["version"] for v in data["versions"]] == [1]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "status=done",
            "'done' is not one of ['training', 'ready', 'failed', 'archived'] - query parameter 'status'",
        ),
        ("page_size=0", "0 is less than the minimum of 1 - query parameter 'page_size'"),
        ("page_size=101", "101 is greater than the maximum of 100 - query parameter 'page_size'"),
        ("page_token=abc", "'abc' does not match '^[0-9]{1,9}$' - query parameter 'page_token'"),
        ("pagesize=2", "Extra query parameter(s) pagesize not in spec"),
    ],
)
def test_bad_listing_parameters_are_400s(registry_client, assert_problem, query, detail):
    assert_problem(registry_client.get(f"{VERSIONS}?{query}"), 400, detail)


def test_one_version_and_what_lies_beneath(registry_client, assert_envelope, artifacts):
    version = assert_envelope(registry_client.get(f"{VERSIONS}/1"))["version"]
    assert version["status"] == "ready"
    assert version["aliases"] == ["production"]
    performance = assert_envelope(registry_client.get(f"{VERSIONS}/1/performance?filter=overall"))[
        "performance"
    ]
    assert performance == {"overall": version["performance"]["overall"]}
    assert assert_envelope(registry_client.get(f"{VERSIONS}/1/args"))["args"] == version["args"]
    assert assert_envelope(registry_client.get(f"{VERSIONS}/1/args/seed"))["args"] == {"seed": 1234}


def test_unknown_versions_and_args_are_404s(registry_client, assert_problem):
    assert_problem(registry_client.get(f"{VERSIONS}/7"), 404, f"model {MODEL!r} has no version 7")
    assert_problem(registry_client.get(f"{VERSIONS}/7/performance"), 404, f"model {MODEL!r} has no version 7")
    assert_problem(
        registry_client.get(f"{VERSIONS}/1/args/nope"),
        404,
        "unknown training argument 'nope'; known arguments: C, analyzer, class_weight, max_df, "
        "max_iter, min_df, ngram_max, seed, stop_words, sublinear_tf, test_size, threshold, "
        "val_size",
    )
    assert_problem(
        registry_client.get(f"{VERSIONS}/one"),
        404,  # not a version number: no such route
        f"'{VERSIONS}/one' not found: no resource of this API has that path (see /docs)",
    )


def test_pinned_predictions_answer_from_that_version(registry_client, assert_envelope):
    body = {"texts": [{"text": "ML applied to image classification."}]}
    answers = (
        registry_client.post("/predictions", json=body),
        registry_client.post(f"{VERSIONS}/2/predictions", json=body),
    )
    production, pinned = (assert_envelope(answer, method="POST") for answer in answers)
    assert production["model"]["version"] == 1
    assert pinned["model"]["version"] == 2
    assert pinned["model"]["run_id"] != production["model"]["run_id"]
    # Same data and args: the two versions agree.
    assert without_ids(answers[1]) == without_ids(answers[0])


ARCHIVED = f"version 2 of {MODEL!r} is archived: it cannot predict"


def test_a_version_archived_after_use_stops_answering(registry_client, assert_envelope, assert_problem):
    body = {"texts": [{"text": "ML applied to image classification."}]}
    assert_envelope(registry_client.post(f"{VERSIONS}/2/predictions", json=body), method="POST")  # now cached
    assert_envelope(registry_client.delete(f"{VERSIONS}/2", headers=ADMIN), method="DELETE")
    assert_problem(registry_client.post(f"{VERSIONS}/2/predictions", json=body), 409, ARCHIVED)


def test_pinned_predictions_validate_the_body_too(registry_client, assert_problem):
    assert_problem(
        registry_client.post(f"{VERSIONS}/2/predictions", json={"texts": [{"text": " "}]}),
        400,
        "' ' has no text - 'texts.0.text'",
    )


def test_archive_is_refused_while_aliased_then_allowed(registry_client, assert_envelope, assert_problem):
    assert_problem(
        registry_client.delete(f"{VERSIONS}/1", headers=ADMIN),
        409,
        f"version 1 of {MODEL!r} is behind alias(es) production: point them elsewhere before archiving it",
    )
    archived = assert_envelope(registry_client.delete(f"{VERSIONS}/2", headers=ADMIN), method="DELETE")
    assert archived["version"]["status"] == "archived"
    assert_problem(
        registry_client.post(f"{VERSIONS}/2/predictions", json={"texts": [{"text": "x"}]}), 409, ARCHIVED
    )
    promote = registry_client.put(f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=ADMIN)
    assert_problem(promote, 409, f"version 2 of {MODEL!r} is archived; only ready versions can be aliased")


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "No authorization token provided"),
        ({"Authorization": f"Bearer {READ_KEY}"}, 403, "this key may only read: send an admin key"),
    ],
)
def test_training_and_archiving_need_an_admin_key(
    registry_client, assert_problem, assert_envelope, headers, status, detail
):
    assert_problem(registry_client.post(VERSIONS, json={}, headers=headers), status, detail)
    assert_problem(registry_client.delete(f"{VERSIONS}/2", headers=headers), status, detail)
    assert [v["status"] for v in assert_envelope(registry_client.get(VERSIONS))["versions"]] == [
        "ready",
        "ready",
    ]


def test_bad_training_args_are_named_before_anything_starts(registry_client, assert_problem, assert_envelope):
    assert_problem(
        registry_client.post(VERSIONS, json={"args": {"ngram_max": 9}}, headers=ADMIN),
        400,
        "9 is greater than the maximum of 5 - 'args.ngram_max'",
    )  # the spec's bound
    assert_problem(
        registry_client.post(
            VERSIONS, json={"args": {"analyzer": "char_wb", "stop_words": True}}, headers=ADMIN
        ),
        400,
        "invalid training arguments: stop_words: stop words apply only to analyzer 'word'",
        kind="invalid-input",
    )
    assert_problem(
        registry_client.post(VERSIONS, json={"args": {"learning_rate": 1}}, headers=ADMIN),
        400,
        "Additional properties are not allowed ('learning_rate' was unexpected) - 'args'",
    )
    assert_problem(
        registry_client.post(VERSIONS, json={"data": "/etc/passwd"}, headers=ADMIN),
        400,
        "'/etc/passwd' is not one of ['bundled', 'bundled+labels'] - 'data'",  # a choice, never a path
    )
    assert len(assert_envelope(registry_client.get(VERSIONS))["versions"]) == 2


def test_training_through_the_api(registry_client, assert_envelope):
    response = registry_client.post(VERSIONS, json={"args": {"C": 3.0, "ngram_max": 1}}, headers=ADMIN)
    created = assert_envelope(response, method="POST", status=202)["version"]
    assert created["version"] == 3
    assert created["status"] == "training"
    assert response.headers["location"] == f"{VERSIONS}/3"
    version = wait_for_training(registry_client, response.headers["location"])
    assert version["status"] == "ready", version["error"]
    assert version["args"]["C"] == 3.0 and version["args"]["ngram_max"] == 1
    assert version["performance"]["overall"]["num_samples"] > 0
    assert version["aliases"] == []  # training never promotes by itself
    assert assert_envelope(registry_client.get("/"))["model"]["version"] == 1


def test_a_training_failure_leaves_a_failed_version(client_for, write_csv):
    one_class = write_csv([{"title": f"t{i}", "description": "d", "tag": "mlops"} for i in range(20)])
    client = client_for(training_data=one_class)
    response = client.post(VERSIONS, headers=ADMIN)
    assert response.status_code == 202
    version = wait_for_training(client, response.headers["location"])
    assert version["status"] == "failed"
    assert version["error"] == (
        f"DatasetError: the training data ({one_class.name}) has a single class (mlops): "
        "at least two are needed to train"
    )
    assert version["performance"] is None and version["artifacts"] is None


def test_integer_training_args_no_database_can_hold_are_refused_by_the_spec(client):
    """The spec bounds every argument (args.py's bounds: test_validation holds them equal)."""
    huge = 2**63
    body = {"args": {"ngram_max": huge, "min_df": huge, "max_iter": huge, "seed": huge}}
    response = client.post(VERSIONS, json=body, headers={**ADMIN, "X-Request-ID": "in-4"})
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "request_id": "in-4",
        "detail": f"{huge} is greater than the maximum of 5 - 'args.ngram_max'",
    }


def test_a_version_whose_files_are_gone_is_a_503_that_names_no_server_path(registry_store, registry_client):
    run_id = registry_store.get_version(MODEL, 2).run_id
    shutil.rmtree(runs_dir(registry_store.store) / run_id)
    response = registry_client.post(
        f"{VERSIONS}/2/predictions",
        json={"texts": [{"text": "object detection"}]},
        headers={"X-Request-ID": "in-8"},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert response.json() == {
        "type": "/problems/model-files-unverified",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"run {run_id}: its files are missing from the artifact store",
        "request_id": "in-8",
    }


def test_a_version_missing_one_file_is_a_503_that_names_no_server_path(registry_store, registry_client):
    run_id = registry_store.get_version(MODEL, 2).run_id
    (runs_dir(registry_store.store) / run_id / MODEL_FILE).unlink()
    response = registry_client.post(
        f"{VERSIONS}/2/predictions",
        json={"texts": [{"text": "object detection"}]},
        headers={"X-Request-ID": "in-9"},
    )
    recorded = registry_store.get_version(MODEL, 2).artifacts[MODEL_FILE]
    assert response.status_code == 503
    assert response.json() == {
        "type": "/problems/model-files-unverified",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"run {run_id}: {MODEL_FILE} does not match its recorded sha256 (expected {recorded}, "
        "found missing); refusing to load it",
        "request_id": "in-9",
    }


# --- a version still training: cancelled by DELETE; the busy answer; the queue in /metrics -----------


def training_jobs_gauge(client) -> dict[str, float]:
    from tests.handlers.test_metrics import scrape

    samples = scrape(client)
    return {
        status: samples.get(("coe_training_jobs", frozenset({("status", status)})))
        for status in ("pending", "running")
    }


def test_delete_cancels_a_version_still_queued(client_for, assert_envelope, assert_problem):
    """No runner here (COE_TRAINING_IN_SERVER=false, no worker): the version waits, and the
    queue shows it; DELETE cancels it, and the limit counts it no longer."""
    client = client_for(training_in_server=False, max_trainings=1)
    response = client.post(VERSIONS, json={}, headers=ADMIN)
    assert_envelope(response, method="POST", status=202)
    assert training_jobs_gauge(client) == {"pending": 1, "running": 0}
    cancelled = assert_envelope(client.delete(f"{VERSIONS}/3", headers=ADMIN), method="DELETE")["version"]
    assert (cancelled["version"], cancelled["status"], cancelled["error"]) == (
        3,
        "failed",
        "cancelled by an administrator before training finished",
    )
    assert assert_envelope(client.get(f"{VERSIONS}/3"))["version"] == cancelled
    assert training_jobs_gauge(client) == {"pending": 0, "running": 0}
    assert assert_envelope(client.post(VERSIONS, json={}, headers=ADMIN), method="POST", status=202)
    # A failed version is archived by DELETE, as before.
    archived = assert_envelope(client.delete(f"{VERSIONS}/3", headers=ADMIN), method="DELETE")["version"]
    assert archived["status"] == "archived"


def test_the_busy_answer_counts_queued_versions_honestly(client_for):
    client = client_for(training_in_server=False, max_trainings=1)
    assert client.post(VERSIONS, json={}, headers=ADMIN).status_code == 202
    response = client.post(VERSIONS, json={}, headers={**ADMIN, "X-Request-ID": "busy-1"})
    assert response.status_code == 503
    assert response.json() == {
        "type": "/problems/busy",
        "title": "Service Unavailable",
        "status": 503,
        "request_id": "busy-1",
        "detail": "1 version(s) are queued or training already, the most this service runs at once: "
        "try again when one has finished",
    }


def test_busy_refusals_are_logged_at_info_and_counted(client_for, caplog):
    """A burst of training requests beyond the limit was one ERROR line each: the service doing as configured."""
    import logging

    from tests.handlers.test_metrics import scrape, value

    client = client_for(training_in_server=False, max_trainings=1)
    assert client.post(VERSIONS, json={}, headers=ADMIN).status_code == 202
    before = value(scrape(client), "coe_training_refusals_total", reason="busy")
    caplog.clear()
    caplog.set_level(logging.INFO, logger="handlers.problems")
    for n in range(3):
        assert (
            client.post(VERSIONS, json={}, headers={**ADMIN, "X-Request-ID": f"busy-{n}"}).status_code == 503
        )
    refusals = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "handlers.problems"]
    assert refusals == 3 * [
        (
            "INFO",
            "busy: 1 version(s) are queued or training already, the most this service runs at once: "
            "try again when one has finished",
        )
    ]
    assert value(scrape(client), "coe_training_refusals_total", reason="busy") == before + 3

import hashlib
import time

import pytest
from sqlalchemy import text

from coe_template.batch.items import QUOTING
from handlers.middleware.request_id import HEADER
from tests.conftest import ADMIN, MODEL, READ_KEY
from tests.problems import shortened
from tests.waiting import wait_until

JOBS = "/batch-predictions"
ITEMS = [
    {"id": "cv-1", "text": "ML applied to image classification."},
    {"id": "nlp-1", "title": "BERT NER", "description": "Named entity recognition with transformers."},
    {"id": "ops-1", "text": "Deploying and monitoring models in production with Kubernetes."},
    {"id": "x-7", "text": "Forecasting sales with gradient boosting."},
    {"id": "cv-2", "text": "Semantic segmentation of satellite images with U-Net."},
    {"id": "nlp-2", "text": "Machine translation with attention."},
    {"id": "ops-2", "text": "Feature store and model registry for reproducible pipelines."},
]


@pytest.fixture
def batch_client(client_for):
    return client_for(batch_chunk_size=3)


def wait_for(client, job_id: str, seconds: float = 60) -> dict:
    """The job once it is no longer queued or running; AssertionError if it still is after ``seconds``."""

    def finished() -> dict | None:
        job = client.get(f"{JOBS}/{job_id}").json()["data"]["job"]
        return None if job["status"] in ("queued", "running") else job

    return wait_until(finished, seconds, f"job {job_id} finished", every=0.1)


def all_results(client, job_id: str, page_size: int) -> list[dict]:
    results, token = [], None
    while True:
        url = f"{JOBS}/{job_id}/results?page_size={page_size}" + (f"&page_token={token}" if token else "")
        data = client.get(url).json()["data"]
        results += data["results"]
        token = data["next_page_token"]
        if token is None:
            return results


def test_a_json_job_runs_to_the_end_and_is_read_back_by_key(batch_client, assert_envelope, artifacts):
    response = batch_client.post(JOBS, json={"items": ITEMS})
    job = assert_envelope(response, method="POST", status=202)["job"]
    assert response.headers["location"] == f"{JOBS}/{job['id']}"
    assert job["status"] == "queued"
    assert job["model"] == {"name": MODEL, "version": 1}
    assert job["items"] == {"total": 7, "done": 0}

    finished = wait_for(batch_client, job["id"])
    assert finished["status"] == "succeeded", finished
    assert finished["items"] == {"total": 7, "done": 7} and finished["progress"] == 1.0
    assert finished["started_at"] and finished["finished_at"]

    for size in (1, 2, 3, 100):
        assert [r["id"] for r in all_results(batch_client, job["id"], size)] == [i["id"] for i in ITEMS]

    stored = assert_envelope(batch_client.get(f"{JOBS}/{job['id']}/results/nlp-1"))["result"]
    assert stored["predicted_tag"] == "natural-language-processing"
    assert stored["model_version"] == 1


def test_batch_and_real_time_agree(batch_client, assert_envelope):
    job = batch_client.post(JOBS, json={"items": ITEMS}).json()["data"]["job"]
    wait_for(batch_client, job["id"])
    texts = [i.get("text") or f"{i['title']} {i['description']}" for i in ITEMS]
    live = assert_envelope(
        batch_client.post("/predictions", json={"texts": [{"text": t} for t in texts]}), method="POST"
    )["predictions"]
    stored = all_results(batch_client, job["id"], 100)
    assert [(s["predicted_tag"], s["probabilities"]) for s in stored] == [
        (p["predicted_tag"], p["probabilities"]) for p in live
    ]


def send_csv(client, csv: bytes, how: str, model_version: int | None = None):
    """A CSV as the body itself (``text/csv``), or uploaded as a form field."""
    if how == "body":
        query = "" if model_version is None else f"?model_version={model_version}"
        return client.post(JOBS + query, content=csv, headers={"Content-Type": "text/csv"})
    form = {} if model_version is None else {"model_version": str(model_version)}
    return client.post(JOBS, files={"file": ("projects.csv", csv, "text/csv")}, data=form)


@pytest.mark.parametrize("how", ["body", "form"])
def test_a_csv_with_a_pinned_version(batch_client, assert_envelope, how):
    csv = b'id,title,description\np1,yolo-lite,Real-time object detection\np2,"chat, bot","A dialogue\nsystem"\n'
    job = assert_envelope(send_csv(batch_client, csv, how, model_version=2), method="POST", status=202)["job"]
    assert job["model"]["version"] == 2 and job["items"]["total"] == 2
    assert wait_for(batch_client, job["id"])["status"] == "succeeded"
    assert [r["model_version"] for r in all_results(batch_client, job["id"], 10)] == [2, 2]


def test_a_version_given_twice_is_refused(batch_client, assert_problem):
    response = batch_client.post(f"{JOBS}?model_version=1", json={"items": ITEMS, "model_version": 2})
    assert_problem(response, 400, "model_version is given both in the query and in the body: give it once")


def test_idempotency_key_returns_the_same_job(batch_client, assert_envelope, assert_problem):
    headers = {"Idempotency-Key": "order-42"}
    first = assert_envelope(
        batch_client.post(JOBS, json={"items": ITEMS}, headers=headers), method="POST", status=202
    )
    again = assert_envelope(
        batch_client.post(JOBS, json={"items": ITEMS}, headers=headers), method="POST", status=202
    )
    assert again["job"]["id"] == first["job"]["id"]
    listed = assert_envelope(batch_client.get(JOBS))["jobs"]
    assert [j["id"] for j in listed] == [first["job"]["id"]]
    other = {"items": ITEMS[:2]}
    assert_problem(
        batch_client.post(JOBS, json=other, headers=headers),
        409,
        f"Idempotency-Key 'order-42' was already used for a different request (job {first['job']['id']})",
    )


def test_jobs_are_listed_newest_first_one_page_at_a_time(batch_client, assert_envelope):
    ids = [batch_client.post(JOBS, json={"items": ITEMS[:1]}).json()["data"]["job"]["id"] for _ in range(5)]
    seen, token = [], None
    while True:
        data = assert_envelope(
            batch_client.get(f"{JOBS}?page_size=2" + (f"&page_token={token}" if token else ""))
        )
        seen += [j["id"] for j in data["jobs"]]
        token = data["next_page_token"]
        if token is None:
            break
    assert seen == ids[::-1]


def test_cancel_then_delete(batch_client, assert_envelope, assert_problem):
    many = [{"id": f"i{n}", "text": f"object detection number {n}"} for n in range(3000)]
    created = batch_client.post(JOBS, json={"items": many}).json()["data"]
    job, mine = created["job"], {"Job-Token": created["job_token"]}
    cancelled = assert_envelope(batch_client.delete(f"{JOBS}/{job['id']}", headers=mine), method="DELETE")
    assert cancelled == {"id": job["id"], "outcome": "cancelled"}
    after = assert_envelope(batch_client.get(f"{JOBS}/{job['id']}"))["job"]
    assert after["status"] == "cancelled"
    # A cancelled job gets no more work: the runner, one chunk at a time oldest job first, finishes a
    # job created after the cancel only once it has let go of the cancelled one's chunk in hand.
    later = batch_client.post(JOBS, json={"items": ITEMS[:1]}).json()["data"]["job"]
    assert wait_for(batch_client, later["id"])["status"] == "succeeded"
    assert assert_envelope(batch_client.get(f"{JOBS}/{job['id']}"))["job"] == after
    deleted = assert_envelope(batch_client.delete(f"{JOBS}/{job['id']}", headers=mine), method="DELETE")
    assert deleted["outcome"] == "deleted"
    assert_problem(batch_client.get(f"{JOBS}/{job['id']}"), 404, f"batch job {job['id']!r} not found")
    assert_problem(batch_client.get(f"{JOBS}/{job['id']}/results"), 404, f"batch job {job['id']!r} not found")


TOO_MANY = [{"id": f"i{n}", "text": "x"} for n in range(10001)]


@pytest.mark.parametrize(
    ("body", "status", "kind", "detail"),
    [
        ({"items": []}, 400, None, "[] should be non-empty - 'items'"),
        ({}, 400, None, "'items' is a required property"),
        ({"items": [{"text": "no id"}]}, 400, None, "'id' is a required property - 'items.0'"),
        (
            {"items": [{"id": "a b", "text": "x"}]},
            400,
            None,
            "'a b' does not match '^[A-Za-z0-9._~:@-]{1,200}$' - 'items.0.id'",
        ),
        (
            {"items": [{"id": "a", "text": "  "}]},
            400,
            "invalid-input",
            "invalid batch: items[0] (id 'a') has no text",
        ),
        ({"items": [{"id": "a"}]}, 400, "invalid-input", "invalid batch: items[0] (id 'a') has no text"),
        (
            {"items": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
            400,
            "invalid-input",
            "invalid batch: id 'a' appears more than once",
        ),
        (
            {"items": [{"id": "a", "text": "x", "lang": "en"}]},
            400,
            None,
            "Additional properties are not allowed ('lang' was unexpected) - 'items.0'",
        ),
        (
            {"items": [{"id": "a", "text": "x"}], "model_version": 9},
            404,
            None,
            f"model {MODEL!r} has no version 9",
        ),
        ({"items": TOO_MANY}, 400, None, shortened(f"{TOO_MANY} is too long - 'items'")),
    ],
)
def test_bad_json_input_is_refused_before_any_work(
    batch_client, assert_problem, assert_envelope, body, status, kind, detail
):
    assert_problem(batch_client.post(JOBS, json=body), status, detail, kind)
    assert assert_envelope(batch_client.get(JOBS))["jobs"] == []


@pytest.mark.parametrize(
    ("csv", "detail"),
    [
        (
            b"id,name\n1,x\n",
            "the CSV file's header (line 1) needs an id column and a text column (or title and description); found id, name",
        ),
        (b"", "the CSV file is empty: expected a header with id and text (or title, description)"),
        (b"id,text\n", "no row: a batch needs at least one"),
        (b"id,text\n1,a\n1,b\n", "invalid batch: id '1' appears more than once"),
        (b"id,text\n1,\n", "invalid batch: row[0] (id '1') has no text"),
        (
            b"id,text\nb,fine\na,Semantic segmentation, of satellite images with unet\n",
            "the CSV file is malformed in the row starting on line 3: 3 fields where the header has 2; "
            f"{QUOTING}",
        ),
        (
            b"id,id,text\na,b,c\n",
            "the CSV file's header (line 1) names id more than once: each column needs a name of its own",
        ),
        (
            b"id,text\na,x\n\nb,y\n",
            "the CSV file is malformed in the row starting on line 3: "
            "a blank line between rows (only blank lines at the end are ignored)",
        ),
        (
            b"id,text\n1,caf\xe9\n",
            "the CSV file is not UTF-8 text: 'utf-8' codec can't decode byte 0xe9 in position 13: "
            "invalid continuation byte",
        ),
    ],
)
@pytest.mark.parametrize("how", ["body", "form"])
def test_bad_csv_is_refused_before_any_work(batch_client, assert_problem, assert_envelope, csv, detail, how):
    assert_problem(send_csv(batch_client, csv, how), 400, detail, kind="invalid-input")
    assert assert_envelope(batch_client.get(JOBS))["jobs"] == []


@pytest.mark.parametrize("how", ["body", "form"])
def test_a_csv_over_the_limit_is_a_413(client_for, assert_problem, how):
    client = client_for(max_upload_bytes=1000)
    big = b"id,text\n" + b"".join(b"%d,object detection\n" % n for n in range(200))
    response = send_csv(client, big, how)
    sent = response.request.headers["content-length"]  # a form adds its boundaries and headers to the CSV
    assert_problem(response, 413, f"request body of {sent} bytes exceeds the limit of 1000 bytes")


def test_a_json_batch_has_a_bound_of_its_own_and_csv_of_the_same_size_streams(client_for, assert_problem):
    """A JSON body is parsed whole before the handler sees it (~15x its size for tiny items): its own,
    smaller bound; the same items as CSV are read a chunk at a time, within the upload limit."""
    client = client_for(max_json_batch_bytes=1500, max_upload_bytes=4000)
    items = [{"id": f"i-{n}", "text": "object detection"} for n in range(80)]
    response = client.post(JOBS, json={"items": items})
    sent = response.request.headers["content-length"]
    assert_problem(response, 413, f"request body of {sent} bytes exceeds the limit of 1500 bytes")
    csv = b"id,text\n" + b"".join(b"i-%d,object detection\n" % n for n in range(80))
    assert 1500 < len(csv) < 4000
    assert send_csv(client, csv, "body").status_code == 202
    # Never above the upload limit, whatever the JSON bound says.
    capped = client_for(max_json_batch_bytes=10_000, max_upload_bytes=1000)
    response = capped.post(JOBS, json={"items": items[:40]})
    sent = response.request.headers["content-length"]
    assert_problem(response, 413, f"request body of {sent} bytes exceeds the limit of 1000 bytes")


def test_other_media_types_are_a_415(batch_client, assert_problem):
    response = batch_client.post(
        JOBS, content=b"id\ttext\n1\tx\n", headers={"content-type": "text/tab-separated-values"}
    )
    assert_problem(
        response,
        415,
        "Invalid Content-type (text/tab-separated-values), "
        "expected ['application/json', 'multipart/form-data', 'text/csv']",
    )


def test_unknown_jobs_and_items_are_404s(batch_client, assert_problem):
    job = batch_client.post(JOBS, json={"items": ITEMS[:1]}).json()["data"]["job"]
    wait_for(batch_client, job["id"])
    assert_problem(
        batch_client.get(f"{JOBS}/{job['id']}/results/nope"),
        404,
        f"batch job {job['id']!r} has no stored result for item 'nope'",
    )
    missing = "00000000-0000-0000-0000-000000000000"
    unknown = f"batch job {missing!r} not found"
    assert_problem(batch_client.get(f"{JOBS}/{missing}"), 404, unknown)
    assert_problem(batch_client.get(f"{JOBS}/{missing}/results/cv-1"), 404, unknown)
    assert_problem(batch_client.delete(f"{JOBS}/{missing}", headers=ADMIN), 404, unknown)
    assert_problem(batch_client.delete(f"{JOBS}/{missing}", headers={"Job-Token": "x" * 43}), 404, unknown)
    assert_problem(
        batch_client.get(f"{JOBS}/not-a-job"),
        400,
        "'not-a-job' does not match '^[0-9a-f-]{36}$' - path parameter 'job-id'",
    )


# --- the job's own token: its creator (or an admin) may cancel or delete it ------------------------


def forbidden(detail: str, request_id: str) -> dict:
    return {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": detail,
        "request_id": request_id,
    }


NOT_YOURS = (
    "this Job-Token is not the one this job was created with: only the client that created the job, "
    "or an admin key, may cancel or delete it"
)


def test_a_new_job_comes_with_its_token_once_and_only_its_digest_is_stored(
    batch_client, assert_envelope, registry_store
):
    response = batch_client.post(JOBS, json={"items": ITEMS})
    data = assert_envelope(response, method="POST", status=202)
    token = data["job_token"]
    assert isinstance(token, str) and len(token) >= 43  # 32 random bytes
    assert response.headers["cache-control"] == "no-store"
    assert "job_token" not in assert_envelope(batch_client.get(f"{JOBS}/{data['job']['id']}"))["job"]
    assert token not in batch_client.get(JOBS).text

    with registry_store.engine.connect() as connection:  # the database the app uses
        row = connection.execute(
            text("SELECT * FROM batch_jobs WHERE id = :id"), {"id": data["job"]["id"]}
        ).one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(tuple(row))
    other = batch_client.post(JOBS, json={"items": ITEMS[:1]}).json()["data"]["job_token"]
    assert other != token


def test_only_the_creator_or_an_admin_may_cancel_or_delete(batch_client, assert_envelope):
    many = [{"id": f"i{n}", "text": f"object detection number {n}"} for n in range(3000)]
    mine = batch_client.post(JOBS, json={"items": many}).json()["data"]
    theirs = batch_client.post(JOBS, json={"items": ITEMS[:2]}).json()["data"]
    url = f"{JOBS}/{mine['job']['id']}"

    refused = batch_client.delete(url, headers={"X-Request-ID": "t-1"})
    assert refused.status_code == 401
    assert refused.json() == {
        "type": "/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": "No authorization token provided",
        "request_id": "t-1",
    }
    for headers, detail in [
        ({"Job-Token": theirs["job_token"]}, NOT_YOURS),  # another client's token
        ({"Job-Token": mine["job_token"][:-1]}, NOT_YOURS),
        ({"Job-Token": ""}, NOT_YOURS),
        ({"Authorization": f"Bearer {READ_KEY}"}, "this key may only read: send an admin key"),
    ]:
        response = batch_client.delete(url, headers={**headers, "X-Request-ID": "t-2"})
        assert response.status_code == 403, headers
        assert response.json() == forbidden(detail, "t-2")
    assert batch_client.get(url).json()["data"]["job"]["status"] != "cancelled"  # nothing happened

    # The token holder, with a read key too (as COE_REQUIRE_KEYS_FOR_READS deployments send), or alone.
    both = {"Authorization": f"Bearer {READ_KEY}", "Job-Token": mine["job_token"]}
    cancelled = assert_envelope(batch_client.delete(url, headers=both), method="DELETE")
    assert cancelled == {"id": mine["job"]["id"], "outcome": "cancelled"}
    assert (
        assert_envelope(batch_client.delete(url, headers={"Job-Token": mine["job_token"]}), method="DELETE")[
            "outcome"
        ]
        == "deleted"
    )

    # An admin key, for any job.
    wait_for(batch_client, theirs["job"]["id"])
    deleted = assert_envelope(
        batch_client.delete(f"{JOBS}/{theirs['job']['id']}", headers=ADMIN), method="DELETE"
    )
    assert deleted == {"id": theirs["job"]["id"], "outcome": "deleted"}


def test_with_keys_required_the_token_holder_also_sends_a_read_key(
    client_for, assert_envelope, assert_problem
):
    client = client_for(batch_chunk_size=3, require_keys_for_reads=True)
    reader = {"Authorization": f"Bearer {READ_KEY}"}
    mine = client.post(JOBS, json={"items": ITEMS}, headers=reader).json()["data"]
    url = f"{JOBS}/{mine['job']['id']}"
    assert_problem(
        client.delete(url, headers={"Job-Token": mine["job_token"]}), 401, "No authorization token provided"
    )
    assert (
        assert_envelope(
            client.delete(url, headers={**reader, "Job-Token": mine["job_token"]}), method="DELETE"
        )["id"]
        == mine["job"]["id"]
    )


def test_a_replay_mints_no_second_token(batch_client, assert_envelope):
    headers = {"Idempotency-Key": "order-43"}
    first = assert_envelope(
        batch_client.post(JOBS, json={"items": ITEMS}, headers=headers), method="POST", status=202
    )
    again = batch_client.post(JOBS, json={"items": ITEMS}, headers=headers)
    replay = assert_envelope(again, method="POST", status=202)
    assert replay["job"]["id"] == first["job"]["id"]
    assert replay["job_token"] is None
    assert again.headers["cache-control"] == "no-store"
    # The first token is still the job's.
    url = f"{JOBS}/{first['job']['id']}"
    assert (
        assert_envelope(batch_client.delete(url, headers={"Job-Token": first["job_token"]}), method="DELETE")[
            "id"
        ]
        == first["job"]["id"]
    )


# --- a version no database column can hold ----------------------------------------------------------

#: Past PostgreSQL's integer, past SQLite's (and every database's) 64-bit integer.
OUT_OF_RANGE = [2**31, 2**63]


def send_version(client, version: int, how: str):
    """``model_version`` in each of the three places a client can put it."""
    headers = {HEADER: "in-3"}
    if how == "json":
        return client.post(JOBS, json={"items": ITEMS[:1], "model_version": version}, headers=headers)
    if how == "query":
        return client.post(
            f"{JOBS}?model_version={version}",
            content=b"id,text\na,x\n",
            headers={**headers, "Content-Type": "text/csv"},
        )
    return client.post(
        JOBS,
        files={"file": ("a.csv", b"id,text\na,x\n", "text/csv")},
        data={"model_version": str(version)},
        headers=headers,
    )


@pytest.mark.parametrize("version", OUT_OF_RANGE)
@pytest.mark.parametrize("how", ["json", "query", "form"])
def test_a_version_out_of_the_databases_range_is_a_bad_request(batch_client, assert_envelope, version, how):
    response = send_version(batch_client, version, how)
    assert response.status_code == 400, response.text
    where = " - query parameter 'model_version'" if how == "query" else " - 'model_version'"
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "request_id": "in-3",
        "detail": f"{version} is greater than the maximum of 2147483647{where}",
    }
    assert assert_envelope(batch_client.get(JOBS))["jobs"] == []


@pytest.mark.parametrize("how", ["body", "form"])
def test_a_csv_with_a_quote_left_open_is_refused_whole_not_half_read(batch_client, assert_envelope, how):
    """It used to be a job of 1 item: the open quote swallowed every row after it."""
    csv = b'id,text\na,"hello\nb,world\n'
    if how == "body":
        response = batch_client.post(JOBS, content=csv, headers={"Content-Type": "text/csv", HEADER: "in-5"})
    else:
        response = batch_client.post(
            JOBS, files={"file": ("a.csv", csv, "text/csv")}, headers={HEADER: "in-5"}
        )
    assert response.status_code == 400
    assert response.json() == {
        "type": "/problems/invalid-input",
        "title": "Bad Request",
        "status": 400,
        "request_id": "in-5",
        "detail": "the CSV file is malformed in the row starting on line 2: unexpected end of data; enclose a "
        "field holding a comma, a quote or a line break in quotes, and double each quote inside it",
    }
    assert assert_envelope(batch_client.get(JOBS))["jobs"] == []


# --- retention: a finished job's expiry, and its removal by the server's batch runner ----------------


def test_a_jobs_expiry_is_null_while_open_then_finished_at_plus_the_retention(
    client_for, assert_envelope, registry_store
):
    """Then, past it, the next server's runner removes the job at start: a 404, counted in /metrics."""
    from datetime import datetime, timedelta

    from coe_template.batch.schema import BatchJob
    from coe_template.registry.schema import utcnow
    from tests.handlers.test_metrics import scrape, value

    client = client_for(batch_chunk_size=3, batch_retention_days=2.5, batch_in_server=False)
    job = assert_envelope(client.post(JOBS, json={"items": ITEMS}), method="POST", status=202)["job"]
    assert job["expires_at"] is None
    worker = client_for(batch_chunk_size=3, batch_retention_days=2.5)  # a server that works batch chunks
    finished = wait_for(worker, job["id"])
    assert finished["status"] == "succeeded"
    expires = datetime.fromisoformat(finished["finished_at"]) + timedelta(days=2.5)
    assert finished["expires_at"] == expires.isoformat(timespec="milliseconds")
    assert assert_envelope(client.get(f"{JOBS}/{job['id']}"))["job"] == finished
    before = value(scrape(client), "coe_batch_jobs_purged_total")

    with registry_store.engine.begin() as connection:  # as if 2.5 days had passed
        connection.execute(
            BatchJob.__table__.update().values(finished_at=utcnow() - timedelta(days=2.5, seconds=1))
        )
    purger = client_for(batch_retention_days=2.5)  # its runner looks for expired jobs as it starts
    deadline = time.monotonic() + 30
    while (response := purger.get(f"{JOBS}/{job['id']}")).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert response.status_code == 404
    assert response.json()["detail"] == f"batch job {job['id']!r} not found"
    deadline = time.monotonic() + 30
    while value(scrape(purger), "coe_batch_jobs_purged_total") != before + 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert value(scrape(purger), "coe_batch_jobs_purged_total") == before + 1
    results = purger.get(f"{JOBS}/{job['id']}/results")
    assert results.status_code == 404


def test_reading_a_job_while_it_expires_is_whole_or_a_404_never_part_or_a_500(
    client_for, assert_envelope, registry_store
):
    """A purge racing with readers: a page of results is every result or none (the expiry's 404)."""
    import threading
    from datetime import timedelta

    from coe_template.batch.jobs import BatchJobs
    from coe_template.batch.schema import BatchJob
    from coe_template.registry.schema import utcnow

    client = client_for(batch_chunk_size=3)
    items = [{"id": f"i-{n}", "text": f"text number {n} about image segmentation"} for n in range(60)]
    job = assert_envelope(client.post(JOBS, json={"items": items}), method="POST", status=202)["job"]
    assert wait_for(client, job["id"])["status"] == "succeeded"
    with registry_store.engine.begin() as connection:
        connection.execute(BatchJob.__table__.update().values(finished_at=utcnow() - timedelta(days=8)))
    purger = BatchJobs(registry_store, retention=timedelta(days=7))
    done = threading.Event()

    def purge() -> None:
        try:
            while purger.purge_step(rows=2) is not None:
                time.sleep(0.001)
        finally:
            done.set()

    thread = threading.Thread(target=purge)
    seen: list[tuple[str, int, int]] = []
    thread.start()
    try:
        while not done.is_set() or len(seen) < 3:
            for url in (f"{JOBS}/{job['id']}", f"{JOBS}/{job['id']}/results?page_size=100"):
                response = client.get(url)
                results = (
                    response.json()["data"]["results"] if "results" in url and response.is_success else []
                )
                seen.append((url.split("?")[0].rsplit("/", 1)[-1], response.status_code, len(results)))
    finally:
        thread.join()
    assert {status for _, status, _ in seen} <= {200, 404}, seen
    assert {n for what, status, n in seen if what == "results" and status == 200} <= {60}, seen
    assert seen[-1][1] == 404


@pytest.mark.parametrize("how", ["body", "form"])
def test_blank_lines_at_the_end_of_a_csv_are_ignored(batch_client, assert_envelope, how):
    job = assert_envelope(
        send_csv(batch_client, b"id,text\na,object detection\n\n\r\n", how), method="POST", status=202
    )
    assert job["job"]["items"] == {"total": 1, "done": 0}


@pytest.fixture
def quota_client(client_for):
    """Jobs stay open (no runner); 8 open items per client, 12 in all."""
    return client_for(batch_in_server=False, batch_max_open_items_per_client=8, batch_max_open_items=12)


def test_a_client_over_its_quota_is_a_429_and_a_key_is_a_client_of_its_own(quota_client, assert_problem):
    assert quota_client.post(JOBS, json={"items": ITEMS}).status_code == 202  # 7 items from this address
    csv = b"id,text\na,object detection\nb,image segmentation\n"
    refused = quota_client.post(JOBS, content=csv, headers={"Content-Type": "text/csv"})
    assert_problem(
        refused,
        429,
        "this client's open batch jobs hold 7 items not yet done; at least 2 more would exceed the limit of 8 "
        "per client; retry once some are done, or send fewer",
        kind="quota-exceeded",
    )
    assert refused.headers["retry-after"] == "60"
    # A key that is not one of ours is no client of its own: its sender is its address.
    unknown = {"Authorization": "Bearer not-a-key-of-this-server", "Content-Type": "text/csv"}
    assert quota_client.post(JOBS, content=csv, headers=unknown).status_code == 429
    read_key = {"Authorization": f"Bearer {READ_KEY}", "Content-Type": "text/csv"}
    assert quota_client.post(JOBS, content=csv, headers=read_key).status_code == 202
    assert len(quota_client.get(JOBS).json()["data"]["jobs"]) == 2


def test_the_server_wide_bound_is_a_503_busy(quota_client, assert_problem):
    assert quota_client.post(JOBS, json={"items": ITEMS}).status_code == 202
    assert quota_client.post(JOBS, json={"items": ITEMS[:4]}, headers=ADMIN).status_code == 202
    refused = quota_client.post(
        JOBS, json={"items": ITEMS[:2]}, headers={"Authorization": f"Bearer {READ_KEY}"}
    )
    assert_problem(
        refused,
        503,
        "the open batch jobs hold 11 items not yet done; at least 2 more would exceed the server's limit of 12; "
        "retry later",
        kind="busy",
    )
    assert refused.headers["retry-after"] == "60"

"""Who may call what, where a key may travel, and the headers every response carries."""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
import pytest

from handlers import security
from handlers.app import create_app
from handlers.context import EXTENSION
from tests.conftest import ADMIN, ADMIN_KEY, READ_KEY
from tests.servers import gunicorn

HEADER = "X-Request-ID"
READER = {"Authorization": f"Bearer {READ_KEY}"}
OTHER_ADMIN_KEY = "second-admin-key-abcdefghij"
TEXTS = {"texts": [{"text": "object detection on drones"}]}
ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def unauthorized(detail: str, request_id: str) -> dict:
    return {
        "type": "/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": detail,
        "request_id": request_id,
    }


# --- reads: open by default, a key for everything when the deployment asks -------------------------

READS = [
    ("GET", "/"),
    ("GET", "/models"),
    ("GET", "/models/project-tagger/versions/1"),
    ("GET", "/args"),
    ("GET", "/batch-predictions"),
    ("POST", "/predictions"),
]


def test_reads_are_open_by_default(client):
    for method, path in READS:
        response = client.request(method, path, json=TEXTS if method == "POST" else None)
        assert response.status_code == 200, (method, path, response.text)


def app_with(settings, **overrides):
    """An app on the session's SQLite model store, which these tests only read: built once per module."""
    app = create_app(replace(settings, **overrides))
    yield app
    app.app.extensions[EXTENSION].registry.engine.dispose()


@pytest.fixture(scope="module")
def locked_app(settings):
    """COE_REQUIRE_KEYS_FOR_READS=true, two admin keys, CORS for one origin."""
    yield from app_with(
        settings,
        require_keys_for_reads=True,
        cors_origins=(ALLOWED,),
        admin_keys=frozenset({ADMIN_KEY, OTHER_ADMIN_KEY}),
    )


@pytest.fixture
def locked_client(locked_app):
    with locked_app.test_client() as client:
        yield client


REFUSALS = [
    ({}, "No authorization token provided"),
    ({"Authorization": "Bearer not-a-key-not-a-key"}, "Provided token is not valid"),
    ({"Authorization": f"Bearer {READ_KEY}x"}, "Provided token is not valid"),
    ({"Authorization": f"Basic {READ_KEY}"}, "No authorization token provided"),
    ({"Authorization": "Bearer"}, "Invalid authorization header"),
]


def test_with_keys_required_every_operation_refuses_a_request_without_a_key(locked_client):
    for method, path in READS + [("GET", "/nowhere"), ("DELETE", "/batch-predictions/x")]:
        for headers, detail in REFUSALS:
            response = locked_client.request(
                method,
                path,
                json=TEXTS if method == "POST" else None,
                headers={**headers, HEADER: "locked-1"},
            )
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == unauthorized(detail, "locked-1")
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["cache-control"] == "no-store"


def test_with_keys_required_a_read_or_admin_key_reads(locked_client):
    for method, path in READS:
        for headers in (READER, ADMIN):
            response = locked_client.request(
                method, path, json=TEXTS if method == "POST" else None, headers=headers
            )
            assert response.status_code == 200, (method, path, response.text)


def test_with_keys_required_admin_operations_keep_their_own_check(locked_client, assert_problem):
    path = "/models/project-tagger/aliases/nope"
    response = locked_client.delete(path, headers={**READER, HEADER: "locked-2"})
    assert response.json() == {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "this key may only read: send an admin key",
        "request_id": "locked-2",
    }
    assert_problem(
        locked_client.delete(path, headers=ADMIN),
        404,  # let through to the handler
        "model 'project-tagger' has no alias 'nope'",
    )


@pytest.mark.parametrize("path", ["/docs/", "/openapi.json"])
def test_with_keys_required_the_docs_stay_open(locked_client, path):
    response = locked_client.get(path)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_open_paths_are_the_probes_and_the_docs():
    """The hook for the probes: they answer an orchestrator that holds no key."""
    assert {"/livez", "/readyz", "/openapi.json", "/docs"} <= security.OPEN_PATHS
    assert security.KeyGuard.is_open("/docs/swagger-ui.css")
    assert not security.KeyGuard.is_open("/docsx")
    assert not security.KeyGuard.is_open("/livez/x")


def test_keys_required_without_any_key_is_a_configuration_error(settings):
    with pytest.raises(ValueError, match="COE_REQUIRE_KEYS_FOR_READS=true needs keys"):
        replace(settings, admin_keys=frozenset(), read_keys=frozenset(), require_keys_for_reads=True)


# --- admin keys: constant time, every key, never logged, never in the query string -----------------


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    compared = []

    def compare_digest(a, b):
        compared.append(b)
        return a == b

    monkeypatch.setattr(security.hmac, "compare_digest", compare_digest)
    keys = ["key-one-0123456789", "key-two-0123456789", "key-three-0123456789"]
    assert security.known("key-one-0123456789", keys)  # a match on the first key still compares them all
    assert sorted(compared) == sorted(k.encode() for k in keys)
    compared.clear()
    assert not security.known("nope-0123456789abc", keys)
    assert len(compared) == 3


def test_every_configured_admin_key_is_accepted(locked_client, assert_problem):
    for key in (ADMIN_KEY, OTHER_ADMIN_KEY):
        response = locked_client.delete(
            "/models/project-tagger/aliases/nope", headers={"Authorization": f"Bearer {key}"}
        )
        # Past both checks, to the handler.
        assert_problem(response, 404, "model 'project-tagger' has no alias 'nope'")


def test_a_key_in_the_query_string_is_refused_without_echoing_it(client):
    for name in ("access_token", "api_key", "key", "API_KEY", "token", "job_token"):
        for path in (
            "/models",
            "/predictions",
            "/models/project-tagger/aliases/production",
            "/docs/",
            "/nowhere",
        ):
            response = client.get(f"{path}?page_size=2&{name}={ADMIN_KEY}", headers={HEADER: "q-1"})
            assert response.status_code == 400, (name, path)
            assert response.json() == {
                "type": "/problems/bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": f"credentials are not accepted in the query string ({name}): it is logged and cached "
                "along the way; send Authorization: Bearer <key> instead",
                "request_id": "q-1",
            }
            assert ADMIN_KEY not in response.text


def test_a_key_in_the_query_string_is_refused_even_with_a_good_header(client, assert_problem):
    response = client.put(
        f"/models/project-tagger/aliases/production?access_token={ADMIN_KEY}",
        json={"version": 2},
        headers=ADMIN,
    )
    assert_problem(
        response,
        400,
        "credentials are not accepted in the query string (access_token): it is "
        "logged and cached along the way; send Authorization: Bearer <key> instead",
    )
    assert client.get("/models/project-tagger/aliases/production").json()["data"]["version"] == 1


def test_no_key_is_logged(client_for, caplog):
    client = client_for(require_keys_for_reads=True)
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-0123456789abcdef"
    assert client.get("/models", headers=READER).status_code == 200
    assert (
        client.put("/models/project-tagger/aliases/staging", json={"version": 2}, headers=ADMIN).status_code
        == 200
    )
    assert (
        client.put("/models/project-tagger/aliases/staging", json={"version": 1}, headers=READER).status_code
        == 403
    )
    assert client.get("/models", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert client.get(f"/models?access_token={wrong}", headers=ADMIN).status_code == 400
    created = client.post(
        "/batch-predictions", json={"items": [{"id": "a", "text": "object detection"}]}, headers=READER
    ).json()["data"]
    job_token = created["job_token"]
    job = f"/batch-predictions/{created['job']['id']}"
    assert client.delete(job, headers={**READER, "Job-Token": wrong}).status_code == 403
    assert client.delete(job, headers={**READER, "Job-Token": job_token}).status_code == 200
    server_side = [
        r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]  # not the client's
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_side)
    assert any(r.levelno == logging.DEBUG for r in server_side)  # DEBUG really captured
    for key in (ADMIN_KEY, READ_KEY, wrong, job_token):
        assert key not in logged


# --- headers on every response ---------------------------------------------------------------------


def test_a_success_carries_nosniff_and_may_be_cached(client):
    response = client.get("/models")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in response.headers


def test_a_problem_carries_nosniff_and_no_store(client):
    for response in (
        client.get("/nowhere"),
        client.get("/models/nope"),
        client.post("/predictions", json={"texts": []}),
    ):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "www-authenticate" not in response.headers


def test_predictions_are_not_stored_by_caches(client):
    for path in ("/predictions", "/models/project-tagger/versions/1/predictions"):
        response = client.post(path, json=TEXTS)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_swagger_ui_carries_nosniff(client):
    for path in ("/docs/", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"


# --- CORS: off by default, on for the origins named ------------------------------------------------


def test_cors_is_off_by_default(client):
    response = client.get("/models", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)
    preflight = client.options("/predictions", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control-") for h in preflight.headers)


@pytest.fixture(scope="module")
def cors_app(settings):
    yield from app_with(settings, cors_origins=(ALLOWED, "http://localhost:3000"))


@pytest.fixture
def cors_client(cors_app):
    with cors_app.test_client() as client:
        yield client


def test_an_allowed_origin_gets_cors_headers(cors_client):
    preflight = cors_client.options("/predictions", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["x-content-type-options"] == "nosniff"

    response = cors_client.post("/predictions", json=TEXTS, headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers


def test_an_allowed_origin_gets_cors_headers_on_a_problem_too(cors_client):
    response = cors_client.get("/models/nope", headers={"Origin": ALLOWED})
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_the_preflight_needs_no_key_when_keys_are_required(locked_client):
    client = locked_client
    preflight = client.options("/models", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.text == "OK"
    assert {k: v for k, v in preflight.headers.items() if k.startswith("access-control-")} == {
        "access-control-allow-origin": ALLOWED,
        "access-control-allow-methods": "GET, POST, PUT, DELETE",
        "access-control-allow-headers": (
            "Accept, Accept-Language, Authorization, Content-Language, Content-Type, Idempotency-Key, "
            "Job-Token, X-Request-ID"
        ),
        "access-control-max-age": "600",
    }
    refused = client.get("/models", headers={"Origin": ALLOWED, "X-Request-ID": "no-key"})
    assert refused.json() == unauthorized("No authorization token provided", "no-key")
    # The refusal is readable by the allowed origin's script: it can tell the user a key is needed.
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert refused.headers["access-control-expose-headers"] == "Location, Retry-After, X-Request-ID"


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://app.example.com", "null"])
def test_another_origin_gets_nothing(cors_client, origin):
    response = cors_client.get("/models", headers={"Origin": origin})
    assert response.status_code == 200
    # Starlette still lists the exposed headers: without an allowed origin they grant nothing.
    assert not any(
        h.startswith("access-control-") for h in response.headers if h != "access-control-expose-headers"
    )
    preflight = cors_client.options(
        "/predictions", headers={"Origin": origin, **PREFLIGHT, "X-Request-ID": "cors-1"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.headers["content-type"] == "application/problem+json"
    assert preflight.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "Disallowed CORS origin",
        "request_id": "cors-1",
    }


# --- the real server: headers on the wire, and no key in its log at DEBUG ---------------------------


def test_the_real_server_sends_the_headers_and_logs_no_key(tmp_path, model_store):
    wrong = "wrong-key-0123456789abcdef"
    env = {
        "COE_MODEL_STORE": str(model_store),
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_READ_KEYS": READ_KEY,
        "COE_REQUIRE_KEYS_FOR_READS": "true",
        "COE_CORS_ORIGINS": ALLOWED,
        "GUNICORN_CMD_ARGS": "--log-level debug",
    }
    log = tmp_path / "server.log"

    def ready(base: str) -> bool:
        return httpx.get(f"{base}/", headers=READER, timeout=1).status_code == 200

    with (
        gunicorn(env, log, workers=1, ready=ready) as (base, _),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        predicted = http.post("/predictions", json=TEXTS, headers=ADMIN)
        assert predicted.status_code == 200
        assert predicted.headers["x-content-type-options"] == "nosniff"
        assert predicted.headers["cache-control"] == "no-store"
        listed = http.get("/models", headers=READER)
        assert listed.status_code == 200 and listed.headers["x-content-type-options"] == "nosniff"
        missing = http.get("/models/nope", headers=READER)
        assert missing.status_code == 404
        assert (missing.headers["x-content-type-options"], missing.headers["cache-control"]) == (
            "nosniff",
            "no-store",
        )
        docs = http.get("/docs/")  # no key
        assert docs.status_code == 200 and docs.headers["x-content-type-options"] == "nosniff"
        refused = http.get("/models", headers={"Authorization": f"Bearer {wrong}"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert http.get(f"/models?access_token={ADMIN_KEY}", headers=ADMIN).status_code == 400
        assert http.get(f"/models?api_key={wrong}").status_code == 400
        assert http.delete("/models/project-tagger/aliases/nope", headers=ADMIN).status_code == 404
        assert http.delete("/models/project-tagger/aliases/nope", headers=READER).status_code == 403
        preflight = http.options("/predictions", headers={"Origin": ALLOWED, **PREFLIGHT})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ALLOWED
    logged = log.read_text()
    assert "/models" in logged and "DEBUG" in logged.upper()  # the requests were logged, at debug level
    for key in (ADMIN_KEY, READ_KEY, wrong):
        assert key not in logged


# --- start-up: a registry without admin keys says so once ------------------------------------------


def started_warnings(settings, caplog) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="handlers.app"):
        app = create_app(settings)
    app.app.extensions[EXTENSION].registry.engine.dispose()
    return [r.getMessage() for r in caplog.records if r.name == "handlers.app"]


def test_without_admin_keys_the_start_up_says_the_registry_is_read_only(settings, caplog):
    assert started_warnings(replace(settings, admin_keys=frozenset()), caplog) == [
        "no COE_ADMIN_KEYS: the registry is read-only (training, promoting, archiving and cancelling "
        "answer 401); predictions and reads are open"
    ]
    assert started_warnings(settings, caplog) == []  # with keys: nothing to say

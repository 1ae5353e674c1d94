"""Errors tell the truth: the client's fault is a 4xx that says so, a bug is a 500 that says nothing
but its request id, and its traceback is in the log under that id."""

from __future__ import annotations

import logging

import pytest
import yaml

from coe_template.errors import CoeError, DatabaseUnavailable
from handlers.app import SPEC_DIR
from handlers.middleware.request_id import HEADER
from tests.problems import assert_problem


def test_a_bug_is_a_generic_500_with_its_traceback_logged(client, app, monkeypatch, caplog):
    registry = app.app.extensions["coe_template"].registry

    def buggy(*_args, **_kwargs):
        return [][0]  # IndexError: a LookupError that used to be answered 404

    monkeypatch.setattr(registry, "list_models", buggy)
    with caplog.at_level(logging.ERROR, logger="handlers.problems"):
        response = client.get("/models", headers={HEADER: "bug-hunt-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed to answer this request; the error is logged under its request id",
        "request_id": "bug-hunt-1",
    }
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.getMessage() == "unhandled IndexError while serving the request"
    assert record.exc_info[0] is IndexError
    assert "list index out of range" in caplog.text
    assert getattr(record, "request_id", None) in (None, "bug-hunt-1")


def test_a_refusal_of_the_package_nobody_mapped_is_a_bug_not_the_clients_fault(
    client, app, monkeypatch, caplog
):
    class Unmapped(CoeError):
        pass

    def refuse(*_args, **_kwargs):
        raise Unmapped("a refusal added without its status")

    monkeypatch.setattr(app.app.extensions["coe_template"].registry, "list_models", refuse)
    with caplog.at_level(logging.ERROR, logger="handlers.problems"):
        response = client.get("/models", headers={HEADER: "bug-hunt-2"})
    assert response.status_code == 500
    assert response.json() == {
        "type": "/problems/internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed to answer this request; the error is logged under its request id",
        "request_id": "bug-hunt-2",
    }
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.getMessage() == "unhandled Unmapped while serving the request"
    assert record.exc_info[0] is Unmapped


def test_a_fresh_app_maps_each_kind_of_error_to_its_problem(settings, monkeypatch):
    """The handlers are registered with each app (the session's app was built before any test ran)."""
    from handlers.app import create_app

    app = create_app(settings)
    with app.test_client() as client:
        assert_problem(client.get("/models/nope"), 404, "model 'nope' not found")
        assert_problem(
            client.post("/predictions", json={"texts": []}), 400, "[] should be non-empty - 'texts'"
        )
        assert_problem(
            client.get("/nowhere"),
            404,
            "'/nowhere' not found: no resource of this API has that path (see /docs)",
        )

        def buggy(*_args, **_kwargs):
            raise KeyError("a bug")

        monkeypatch.setattr(app.app.extensions["coe_template"].registry, "list_models", buggy)
        assert_problem(
            client.get("/models"),
            500,
            "the server failed to answer this request; the error is logged under its request id",
            kind="internal-error",
        )


def test_a_framework_fault_is_logged_with_its_status_and_a_client_error_is_not(caplog):
    from connexion.exceptions import ProblemException

    from handlers.problems import framework_problem

    with caplog.at_level(logging.INFO, logger="handlers.problems"):
        for status in (451, 500, 503):
            framework_problem(None, ProblemException(status=status, detail=f"fault {status}"))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "500 fault 500"),
        ("ERROR", "503 fault 503"),
    ]


def test_a_framework_problem_without_a_detail_gets_the_statuss_description():
    import json

    from connexion.exceptions import ProblemException

    from handlers.problems import framework_problem

    assert json.loads(framework_problem(None, ProblemException(status=404)).body) == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Nothing matches the given URI",
        "request_id": None,
    }


@pytest.mark.parametrize(
    ("cause", "logged"),
    [
        (None, ""),
        (
            OSError("  connection refused\n\tIs the server running on that host?\n\tport 5432?"),
            " (cause: connection refused)",
        ),
    ],
)
def test_a_database_fault_is_a_503_with_retry_after(client, app, monkeypatch, caplog, cause, logged):
    registry = app.app.extensions["coe_template"].registry

    def down(*_args, **_kwargs):
        raise DatabaseUnavailable("the registry's database did not answer within 3 s") from cause

    monkeypatch.setattr(registry, "list_models", down)
    with caplog.at_level(logging.ERROR, logger="handlers.problems"):
        response = client.get("/models", headers={HEADER: "db-down"})
    # One line, with the first line of the underlying error.
    assert [r.getMessage() for r in caplog.records if r.name == "handlers.problems"] == [
        f"database-unavailable: the registry's database did not answer within 3 s{logged}"
    ]
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "type": "/problems/database-unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "the registry's database did not answer within 3 s",
        "request_id": "db-down",
    }


def test_not_found_is_pinned_whole(client):
    response = client.get("/models/nope", headers={HEADER: "r-1"})
    assert response.status_code == 404
    assert response.json() == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "model 'nope' not found",
        "request_id": "r-1",
    }


def test_a_spec_violation_is_pinned_whole(client):
    response = client.post("/predictions", json={"texts": []}, headers={HEADER: "r-2"})
    assert response.status_code == 400
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "[] should be non-empty - 'texts'",
        "request_id": "r-2",
    }


def test_json_that_does_not_parse_is_pinned_whole(client):
    response = client.post(
        "/predictions", content=b'{"texts": [}', headers={"Content-Type": "application/json", HEADER: "r-5"}
    )
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "request body is not valid JSON: Expecting value: line 1 column 12 (char 11)",
        "request_id": "r-5",
    }


def test_a_missing_key_is_pinned_whole(client):
    response = client.post("/models/project-tagger/versions", json={}, headers={HEADER: "r-3"})
    assert response.status_code == 401
    assert response.json() == {
        "type": "/problems/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": "No authorization token provided",
        "request_id": "r-3",
    }


def test_an_unknown_path_is_pinned_whole(client):
    response = client.get("/nowhere", headers={HEADER: "r-4"})
    assert response.json() == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "'/nowhere' not found: no resource of this API has that path (see /docs)",
        "request_id": "r-4",
    }


def test_a_detail_is_cut_at_its_first_blank_line(client):
    """jsonschema appends the schema and instance after a blank line: the problem keeps what comes before.

    Connexion's message for an unknown query parameter carries its name as sent, so a name with a
    blank line in it shows the cut (``handlers.problems.bad_request``).
    """
    assert_problem(client.get("/performance?a%0A%0Ab=1"), 400, "Extra query parameter(s) a")


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [("GET", "/docs/nope.js", 404, "Not Found"), ("POST", "/docs/swagger-ui.css", 405, "Method Not Allowed")],
)
def test_swagger_uis_own_refusals_are_problems_too(client, method, path, status, detail):
    """Swagger UI's static files are served by Starlette: its refusals are a bare ``HTTPException``."""
    assert_problem(client.request(method, path), status, detail)


def test_every_response_carries_a_request_id(client):
    ok = client.get("/")
    assert len(ok.headers[HEADER]) == 32
    assert client.get("/", headers={HEADER: "abc-123"}).headers[HEADER] == "abc-123"


@pytest.mark.parametrize("given", ["", "a b", "x" * 129, "é", "a\tb", "<script>", "a;b"])
def test_an_unsafe_request_id_is_replaced(client, given):
    response = client.get("/", headers={HEADER: given.encode("utf-8")})
    assert response.headers[HEADER] != given
    assert len(response.headers[HEADER]) == 32


def concrete(path: str) -> str:
    """A path of the spec with a valid value for each of its parameters."""
    values = {
        "model-name": "project-tagger",
        "version": "1",
        "alias": "staging",
        "arg": "seed",
        "job-id": "00000000-0000-0000-0000-000000000000",
        "item-id": "a",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


SPEC_PATHS = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())["paths"]


@pytest.mark.parametrize("path", sorted(SPEC_PATHS))
def test_a_method_the_path_lacks_is_a_405_that_allows_every_method_of_the_path(client, path):
    methods = {m.upper() for m in SPEC_PATHS[path] if m != "parameters"}
    allowed = ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
    response = client.request("PATCH", concrete(path), headers={HEADER: "in-7"})
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {
        "type": "/problems/method-not-allowed",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"PATCH is not allowed on {concrete(path)}: use {allowed}",
        "request_id": "in-7",
    }


def test_every_problem_type_the_service_sends_is_in_the_spec_and_back():
    import re

    import yaml

    from handlers.app import SPEC_DIR
    from handlers.problems import KINDS

    described = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())["components"]["schemas"]["Problem"]
    tabled = set(re.findall(r"`/problems/([a-z-]+)`", described["description"]))
    assert tabled == set(KINDS)


def test_an_integral_float_is_not_an_integer(client):
    # Draft 4, as the spec: fastjsonschema's default draft took 1.0 for an integer and echoed it back.
    from tests.conftest import ADMIN

    response = client.put(
        "/models/project-tagger/aliases/staging", json={"version": 1.0}, headers={**ADMIN, HEADER: "f-1"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "1.0 is not of type 'integer' - 'version'"


# --- the document itself: its members, its shortened detail, the server's own refusals -------------


def test_a_detail_of_the_maximum_length_is_kept_whole():
    from handlers.problems import document

    exact = "v" * 133 + "w" * 267  # 400 characters
    assert document(400, exact, request_id="m-1") == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": exact,
        "request_id": "m-1",
    }


def test_a_detail_one_character_longer_keeps_its_first_third_and_last_two_thirds():
    from handlers.problems import document

    assert document(400, "v" * 133 + "x" + "w" * 267)["detail"] == "v" * 133 + " … " + "w" * 266


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "invalid-input", "/problems/invalid-input"),  # a kind named wins over the status's
        (503, None, "/problems/unavailable"),
        (418, None, "about:blank"),  # a status no kind of this API has
        (400, "no-such-kind", "about:blank"),
    ],
)
def test_the_type_is_the_kind_named_else_the_statuss_else_about_blank(status, kind, expected):
    from handlers.problems import document

    assert document(status, "d", kind)["type"] == expected


def test_a_problem_the_server_answers_itself_has_the_apps_headers_and_a_compact_body():
    from handlers.problems import raw

    headers, body = raw(503, "too many connections", "rid-1", kind="busy", headers={"Retry-After": "1"})
    assert body == (
        b'{"detail":"too many connections","request_id":"rid-1","status":503,'
        b'"title":"Service Unavailable","type":"/problems/busy"}'
    )
    assert headers == [
        (b"content-type", b"application/problem+json"),
        (b"content-length", b"%d" % len(body)),
        (b"x-request-id", b"rid-1"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"1"),
    ]


def test_a_raisers_title_gives_way_to_the_status_phrase(settings):
    """Connexion's problems and ours carry a title of their own; the document's is the status's phrase."""
    from dataclasses import replace
    from http import HTTPStatus

    from handlers.app import create_app

    with create_app(replace(settings, max_body_bytes=10)).test_client() as client:
        response = client.post(
            "/predictions", json={"texts": [{"text": "a long enough body"}]}, headers={HEADER: "t-413"}
        )
    assert response.json() == {
        "type": "/problems/payload-too-large",
        "title": HTTPStatus(413).phrase,
        "status": 413,
        "detail": f"request body of {len(response.request.content)} bytes exceeds the limit of 10 bytes",
        "request_id": "t-413",
    }

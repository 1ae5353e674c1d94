"""Errors tell the truth: the client's fault is a 4xx that says so, a bug is a 500 that says nothing
but its request id, and its traceback is in the log under that id."""

from __future__ import annotations

import logging

import pytest
import yaml

from coe_template.errors import DatabaseUnavailable
from handlers.app import SPEC_DIR
from handlers.request_id import HEADER


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
    assert record.exc_info[0] is IndexError
    assert "list index out of range" in caplog.text
    assert getattr(record, "request_id", None) in (None, "bug-hunt-1")


def test_a_database_fault_is_a_503_with_retry_after(client, app, monkeypatch):
    registry = app.app.extensions["coe_template"].registry

    def down(*_args, **_kwargs):
        raise DatabaseUnavailable("the registry's database did not answer within 3 s")

    monkeypatch.setattr(registry, "list_models", down)
    response = client.get("/models", headers={HEADER: "db-down"})
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
        "type": "/problems/not-found", "title": "Not Found", "status": 404,
        "detail": "model 'nope' not found", "request_id": "r-1",
    }


def test_a_spec_violation_is_pinned_whole(client):
    response = client.post("/predictions", json={"texts": []}, headers={HEADER: "r-2"})
    assert response.status_code == 400
    assert response.json() == {
        "type": "/problems/bad-request", "title": "Bad Request", "status": 400,
        "detail": "[] should be non-empty - 'texts'", "request_id": "r-2",
    }


def test_a_missing_key_is_pinned_whole(client):
    response = client.post("/models/project-tagger/versions", json={}, headers={HEADER: "r-3"})
    assert response.status_code == 401
    assert response.json() == {
        "type": "/problems/unauthorized", "title": "Unauthorized", "status": 401,
        "detail": "No authorization token provided", "request_id": "r-3",
    }


def test_an_unknown_path_is_pinned_whole(client):
    response = client.get("/nowhere", headers={HEADER: "r-4"})
    assert response.json() == {
        "type": "/problems/not-found", "title": "Not Found", "status": 404,
        "detail": "'/nowhere' not found: no resource of this API has that path (see /docs)", "request_id": "r-4",
    }


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
    values = {"model-name": "project-tagger", "version": "1", "alias": "staging", "arg": "seed",
              "job-id": "00000000-0000-0000-0000-000000000000", "item-id": "a"}
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
        "type": "/problems/method-not-allowed", "title": "Method Not Allowed", "status": 405,
        "detail": f"PATCH is not allowed on {concrete(path)}: use {allowed}", "request_id": "in-7",
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

    response = client.put("/models/project-tagger/aliases/staging", json={"version": 1.0},
                          headers={**ADMIN, HEADER: "f-1"})
    assert response.status_code == 400
    assert response.json()["detail"] == "1.0 is not of type 'integer' - 'version'"

"""The body of ``POST /models/{model-name}/versions`` is optional: absent, ``{}`` or ``null``, the
version trains with the server's default arguments (the spec's media type says ``x-nullable``:
Connexion lets a missing body through only then)."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN

VERSIONS = "/models/project-tagger/versions"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (None, {}),
        (b"{}", {"Content-Type": "application/json"}),
        (b"null", {"Content-Type": "application/json"}),
    ],
    ids=["absent", "empty object", "null"],
)
def test_a_training_request_without_arguments_is_accepted(client_for, body, headers):
    client = client_for(training_in_server=False)  # the version stays queued: nothing trains here
    response = client.post(VERSIONS, content=body, headers={**ADMIN, **headers})
    assert response.status_code == 202, response.text
    version = response.json()["data"]["version"]
    assert (version["version"], version["status"]) == (3, "training")
    assert response.headers["location"] == f"{VERSIONS}/3"
    assert client.get(f"{VERSIONS}/3").json()["data"]["version"]["status"] == "training"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[]", "[] is not of type 'object'"),
        (
            b'{"args": {"learning_rate": 1}}',
            "Additional properties are not allowed ('learning_rate' was unexpected) - 'args'",
        ),
    ],
)
def test_a_body_that_is_not_an_object_is_refused(client_for, body, detail):
    client = client_for(training_in_server=False)
    response = client.post(
        VERSIONS, content=body, headers={**ADMIN, "Content-Type": "application/json", "X-Request-ID": "tb-1"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "request_id": "tb-1",
    }

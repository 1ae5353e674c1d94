"""The one check of a problem answer: the whole body, never a status or a substring alone."""

from __future__ import annotations

from http import HTTPStatus

#: The ``type`` of a problem of each status, unless the test names another: the package's own refusals
#: of bad input are ``invalid-input``, its outages ``database-unavailable``, ``busy``...
KIND = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    411: "length-required",
    413: "payload-too-large",
    415: "unsupported-media-type",
    503: "unavailable",
}


def shortened(detail: str) -> str:
    """A detail as a problem carries it: over 400 characters, its first 133 and last 266, joined by " … "."""
    return detail if len(detail) <= 400 else f"{detail[:133]} … {detail[-266:]}"


def assert_problem(response, status: int, detail: str, kind: str | None = None) -> None:
    """An application/problem+json answer, whole: its type, its title (the status phrase), its status,
    its exact detail and its request id (the response's)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": f"/problems/{kind or KIND[status]}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": response.headers["x-request-id"],
    }

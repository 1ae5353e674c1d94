"""Every error becomes an ``application/problem+json`` document, mapped here only.

Only the package's own refusals (:mod:`coe_template.errors`) and the framework's
problems (a request the spec or a limit refuses) become a 4xx or a 503; anything
else is a bug, answered ``500`` with a generic detail while its traceback goes to
the log under the request's id. Every problem names a stable ``type`` (one per
kind of error, listed in the spec) and carries the request id. Each ``type`` is the
address of a short page (:func:`page`) made from the spec's table of kinds, the one
place that says what each means.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from functools import cache
from http import HTTPStatus

from connexion import FlaskApp
from connexion.exceptions import BadRequestProblem, ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem
from starlette.exceptions import HTTPException

from coe_template.errors import (
    ArtifactUnavailable,
    Busy,
    CoeError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    StorageFull,
    Unavailable,
)
from handlers.middleware.headers import NO_STORE, NOSNIFF, PROBLEM
from handlers.middleware.request_id import HEADER, current_request_id

log = logging.getLogger(__name__)

#: Longest ``detail`` echoed back: validation messages quote the offending value.
MAX_DETAIL = 400
#: Where the ``type`` URIs live; each kind's page says what it means and what to do.
TYPE_BASE = "/problems/"

#: The package's refusals: status and kind, most specific class first.
_DOMAIN: tuple[tuple[type[CoeError], HTTPStatus, str], ...] = (
    (InvalidInput, HTTPStatus.BAD_REQUEST, "invalid-input"),
    (NotFound, HTTPStatus.NOT_FOUND, "not-found"),
    (Conflict, HTTPStatus.CONFLICT, "conflict"),
    (QuotaExceeded, HTTPStatus.TOO_MANY_REQUESTS, "quota-exceeded"),
    (DatabaseUnavailable, HTTPStatus.SERVICE_UNAVAILABLE, "database-unavailable"),
    (ArtifactUnavailable, HTTPStatus.SERVICE_UNAVAILABLE, "model-files-unverified"),
    (StorageFull, HTTPStatus.INSUFFICIENT_STORAGE, "storage-full"),
    (Busy, HTTPStatus.SERVICE_UNAVAILABLE, "busy"),
    (Unavailable, HTTPStatus.SERVICE_UNAVAILABLE, "unavailable"),
)

#: Problems the framework or a limit raises, by status.
_BY_STATUS: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    411: "length-required",
    413: "payload-too-large",
    415: "unsupported-media-type",
    431: "header-section-too-large",
    500: "internal-error",
    503: "unavailable",
}

#: Every ``type`` a problem of this API can carry (the spec lists the same).
KINDS = frozenset(_BY_STATUS.values()) | {kind for _, _, kind in _DOMAIN}


def type_uri(kind: str) -> str:
    return TYPE_BASE + kind


def document(
    status: int, detail: str, kind: str | None = None, request_id: str | None = None
) -> dict[str, object]:
    """The one way a problem document is made: its members; the title is always the status's phrase."""
    kind = kind or _BY_STATUS.get(status, "about:blank")
    return {
        "type": type_uri(kind) if kind in KINDS else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": _shorten(detail),
        "request_id": request_id,
    }


def response(
    status: int, detail: str, kind: str | None = None, headers: Mapping[str, str] | None = None
) -> ConnexionResponse:
    """A problem answered through Connexion (the middlewares then add the request id and security headers)."""
    fields = document(status, detail, kind, current_request_id())
    return problem(
        status=status,
        title=fields["title"],
        detail=fields["detail"],
        type=fields["type"],
        headers=dict(headers or {}),
        ext={"request_id": fields["request_id"]},
    )


def raw(
    status: int,
    detail: str,
    request_id: str,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A problem answered outside the app (the server's own refusals): every header the app's would carry, body."""
    body = json.dumps(
        document(status, detail, kind, request_id=request_id), separators=(",", ":"), sort_keys=True
    ).encode()
    fields = {
        "Content-Type": PROBLEM,
        "Content-Length": str(len(body)),
        HEADER: request_id,
        NOSNIFF[0]: NOSNIFF[1],
        NO_STORE[0]: NO_STORE[1],
        **(headers or {}),
    }
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fields.items()], body


def _shorten(detail: str) -> str:
    if len(detail) <= MAX_DETAIL:
        return detail
    # Keep both ends: the start names the value, the end says what is wrong with it.
    return f"{detail[: MAX_DETAIL // 3]} … {detail[-(MAX_DETAIL * 2 // 3) :]}"


def bad_request(_request: ConnexionRequest, exc: BadRequestProblem) -> ConnexionResponse:
    detail = str(exc.detail)
    if isinstance(exc.__context__, json.JSONDecodeError):
        detail = f"request body is not valid JSON: {detail}"
    # jsonschema appends the failing schema and instance after a blank line.
    return response(HTTPStatus.BAD_REQUEST, detail.partition("\n\n")[0])


def framework_problem(_request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """A problem raised by Connexion, Starlette or one of our middlewares: its status, our shape (whatever
    title the raiser gave, the title is the status's phrase)."""
    status = exc.status_code  # a ProblemException's too: it is a Starlette HTTPException
    if status >= 500:
        log.error("%s %s", status, exc.detail)
    return response(status, str(exc.detail or HTTPStatus(status).description), headers=exc.headers)


def refused(_request: ConnexionRequest, exc: CoeError) -> ConnexionResponse:
    """One of the package's own refusals."""
    for cls, status, kind in _DOMAIN:  # noqa: B007 - status and kind are used after the break
        if isinstance(exc, cls):
            break
    else:  # a new CoeError subclass nobody mapped: a bug, not the client's fault
        return internal_error(_request, exc)
    headers = {}
    if isinstance(exc, QuotaExceeded):  # the client's own doing: no error to log
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
        # One line, with the underlying error's first line (e.g. the driver's) as the cause.
        cause = str(exc.__cause__).strip().partition("\n")[0] if exc.__cause__ else ""
        # A limit the service sets itself is the service working as configured: INFO, not an error
        # (a burst of refused trainings was hundreds of ERROR lines); /metrics counts them.
        level = logging.INFO if isinstance(exc, Busy) else logging.ERROR
        log.log(level, "%s: %s%s", kind, exc, f" (cause: {cause})" if cause else "")
    return response(status, str(exc), kind, headers=headers)


def internal_error(_request: ConnexionRequest, exc: BaseException) -> ConnexionResponse:
    """A bug: the traceback goes to the log, the client gets the request id to quote."""
    log.error("unhandled %s while serving the request", type(exc).__name__, exc_info=exc)
    return response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "the server failed to answer this request; the error is logged under its request id",
    )


#: A row of the table in the spec's ``Problem`` schema: | `/problems/<kind>` | status | meaning |
_ROW = re.compile(r"^\|\s*`" + re.escape(TYPE_BASE) + r"([a-z-]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|$")


@cache
def meanings() -> dict[str, tuple[int, str]]:
    """Each kind's status and meaning, from the spec's ``Problem`` table: the one place they are written."""
    import yaml

    from handlers.app import SPEC_DIR  # here: the app imports this module

    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))
    table = spec["components"]["schemas"]["Problem"]["description"]
    rows = (_ROW.match(line.strip()) for line in table.splitlines())
    return {row[1]: (int(row[2]), row[3]) for row in rows if row}


def _inline(markdown: str) -> str:
    """The table's Markdown is text and `code` only."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(markdown, quote=False))


def page(kind: str) -> ConnexionResponse:
    """The page a problem's ``type`` points at: status, meaning, what to do."""
    if kind not in KINDS or kind not in meanings():
        raise ProblemException(
            status=404, detail=f"no problem type {type_uri(kind)!r}: every type is listed under /docs"
        )
    status, meaning = meanings()[kind]
    heading = f"{type_uri(kind)}: {status} {HTTPStatus(status).phrase}"
    body = (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title></head>\n'
        f"<body><h1><code>{html.escape(type_uri(kind))}</code></h1>\n"
        f"<p>Status {status} {HTTPStatus(status).phrase}.</p>\n"
        f"<p>{_inline(meaning)}</p>\n"
        '<p>Every kind of error: <a href="/docs">/docs</a>, schema <code>Problem</code>.</p>\n'
        "</body></html>\n"
    )
    # Werkzeug appends the charset to a text/* type itself.
    return ConnexionResponse(status_code=200, body=body, content_type="text/html")


def register(app: FlaskApp) -> None:
    app.add_error_handler(HTTPException, framework_problem)
    app.add_error_handler(ProblemException, framework_problem)
    app.add_error_handler(BadRequestProblem, bad_request)
    app.add_error_handler(CoeError, refused)
    app.add_error_handler(Exception, internal_error)

"""Every error becomes an ``application/problem+json`` document, mapped here only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from connexion import FlaskApp
from connexion.exceptions import BadRequestProblem
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem
from marshmallow import ValidationError

from coe_template.args import ArgsError
from coe_template.batch.items import BatchInputError
from coe_template.registry import Conflict
from coe_template.store import ArtifactError

#: Longest ``detail`` echoed back: validation messages quote the offending value.
MAX_DETAIL = 400


def _response(status: HTTPStatus, detail: str) -> ConnexionResponse:
    return problem(status=status.value, title=status.phrase, detail=_shorten(detail))


def _shorten(detail: str) -> str:
    if len(detail) <= MAX_DETAIL:
        return detail
    # Keep both ends: the start names the value, the end says what is wrong with it.
    return f"{detail[: MAX_DETAIL // 3]} … {detail[-(MAX_DETAIL * 2 // 3):]}"


def _flatten(messages: Mapping[Any, Any] | list[Any], path: str = "") -> list[str]:
    if isinstance(messages, Mapping):
        out: list[str] = []
        for key, value in messages.items():
            out.extend(_flatten(value, f"{path}.{key}" if path else str(key)))
        return out
    return [f"{path}: {' '.join(map(str, messages))}"]


def bad_request(_request: ConnexionRequest, exc: BadRequestProblem) -> ConnexionResponse:
    detail = str(exc.detail)
    if isinstance(exc.__context__, json.JSONDecodeError):
        detail = f"request body is not valid JSON: {detail}"
    # jsonschema appends the failing schema and instance after a blank line.
    return _response(HTTPStatus.BAD_REQUEST, detail.split("\n\n", 1)[0])


def invalid_body(_request: ConnexionRequest, exc: ValidationError) -> ConnexionResponse:
    return _response(HTTPStatus.BAD_REQUEST, "; ".join(_flatten(exc.normalized_messages())))


def not_found(_request: ConnexionRequest, exc: LookupError) -> ConnexionResponse:
    return _response(HTTPStatus.NOT_FOUND, str(exc))


def invalid_args(_request: ConnexionRequest, exc: ValueError) -> ConnexionResponse:
    return _response(HTTPStatus.BAD_REQUEST, str(exc))


def conflict(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    return _response(HTTPStatus.CONFLICT, str(exc))


def register(app: FlaskApp) -> None:
    app.add_error_handler(BadRequestProblem, bad_request)
    app.add_error_handler(ValidationError, invalid_body)
    app.add_error_handler(ArgsError, invalid_args)
    app.add_error_handler(BatchInputError, invalid_args)
    app.add_error_handler(LookupError, not_found)
    app.add_error_handler(Conflict, conflict)
    # A version whose files no longer match their digests is refused, not loaded.
    app.add_error_handler(ArtifactError, conflict)

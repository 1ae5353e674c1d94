"""The response envelope every successful answer carries, built in one place."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import request

from config.variables import valid_host
from handlers.context import services

#: Host headers seen, checked once each (a client sending new ones only evicts old ones).
_valid_host = functools.lru_cache(maxsize=256)(valid_host)


def _base() -> str:
    """Where this API lives for the client: ``COE_PUBLIC_URL`` when set, else the request's
    ``Host`` if it is a host name or IP literal with an optional port 1-65535; else nothing,
    and the URL is relative (the server's own address would be wrong behind any proxy, and
    the header's bytes are never echoed)."""
    public = services().settings.public_url
    if public is not None:
        return public
    host = request.environ.get("HTTP_HOST", "")
    if _valid_host(host):
        return f"{request.scheme}://{host}{request.root_path}"
    return request.root_path


def _url() -> str:
    """The URL as requested: Werkzeug's ``request.url`` also decodes it to an IRI, ~15 µs a request."""
    query = request.query_string.decode("latin-1")
    return f"{_base()}{request.path}{'?' + query if query else ''}"


def enveloped(status: HTTPStatus = HTTPStatus.OK) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap what a handler returns as ``data`` in the seed's envelope.

    A handler returns its data, or ``(data, headers)`` when it sets headers.
    """

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
            result = handler(*args, **kwargs)
            data, headers = result if isinstance(result, tuple) else (result, {})
            body = {
                "message": status.phrase,
                "method": request.method,
                "status-code": status.value,
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "url": _url(),
                "data": data,
            }
            return body, status.value, {"Content-Type": "application/json", **headers}

        return wrapper

    return decorate

"""The response envelope every successful answer carries, built in one place."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from flask import request


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
                "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "url": request.url,
                "data": data,
            }
            return body, status.value, {"Content-Type": "application/json", **headers}

        return wrapper

    return decorate

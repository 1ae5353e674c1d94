"""What the service tells its operators, for every layer to use: the request being served, the metrics.

The request id (``X-Request-ID``) is a plain context variable, set by the HTTP layer's
middleware (:class:`handlers.middleware.request_id.RequestId`) and read by every log line
(:mod:`config.logging`); Connexion runs Flask in threads with a copy of the request's
context, so handlers see it too. The metrics and their hooks are in
:mod:`coe_template.observability.metrics`, imported apart: importing it imports
``prometheus_client``, which reads ``PROMETHEUS_MULTIPROC_DIR`` once.
"""

from __future__ import annotations

from contextvars import ContextVar

#: The id of the request being served (``X-Request-ID``); None outside one.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one."""
    return request_id.get()

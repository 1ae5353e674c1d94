"""What the service tells its operators, for every layer to use: the request being served, the metrics.

The request id (``X-Request-ID``) is a plain context variable, set by the HTTP layer's
middleware (:class:`handlers.middleware.request_id.RequestId`) and read by every log line
(:mod:`config.logging`); Connexion runs Flask in threads with a copy of the request's
context, so handlers see it too. The actor (which key) is one more such variable, set when a key is
checked (:func:`handlers.security.bearer_info`, scoped to its request by the same middleware) and
once per command by the CLI; the registry's history (:mod:`coe_template.registry.events`) reads both. The metrics and their hooks are in
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


#: Who is acting: a key's id (never the key) during a request made with one, ``cli`` in a command.
actor: ContextVar[str | None] = ContextVar("actor", default=None)


def current_actor() -> str | None:
    """Who is acting (see :data:`actor`), or None when nobody said: the registry's history records it."""
    return actor.get()

"""Logging, configured in one place: one handler, readable text or JSON lines.

Every line carries the time (UTC), level, pid, logger and the id of the request
being served (``-`` outside one). ``COE_LOG_FORMAT=json`` writes one JSON object
a line (``python-json-logger``); the default is text for people.

Nothing happens at import: :func:`configure` is called by :func:`coe_template.bootstrap.configure_logging`
and, under gunicorn, by ``config.gunicorn.GunicornLogger`` (its ``logger_class``),
so gunicorn's and uvicorn's own lines come out in the same format. The access log is
ours (:mod:`handlers.middleware.observe`, logger ``coe.access``): uvicorn's and gunicorn's are off.

Secrets never reach the output: the handler's formatter replaces the
configured keys and anything after ``Bearer`` in every message and traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable

from pythonjsonlogger.json import JsonFormatter

from coe_template.observability import current_request_id

FORMATS = ("text", "json")
#: The logger our access lines go to (one per request).
ACCESS = "coe.access"
#: Loggers whose access lines ours replace.
_SILENCED = ("uvicorn.access", "gunicorn.access")
_TEXT = "%(asctime)s %(levelname)s [%(process)d] %(name)s %(request_id)s: %(message)s"
_JSON_FIELDS = ("asctime", "levelname", "process", "name", "request_id", "message")
_RENAMED = {"asctime": "time", "levelname": "level", "process": "pid", "name": "logger"}
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_REDACTED = "[redacted]"
#: Longest message written; the traceback, if any, follows in full.
MAX_MESSAGE = 2000

_handler: logging.Handler | None = None


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request it was written while serving, and cut its
    message to :data:`MAX_MESSAGE` characters: messages can quote what a client sent."""

    def __init__(self, missing: str | None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id()
        record.request_id = self.missing if request_id is None else request_id
        message = record.getMessage()
        if len(message) > MAX_MESSAGE:
            record.msg, record.args = (
                f"{message[:MAX_MESSAGE]}… [{len(message) - MAX_MESSAGE} characters cut]",
                None,
            )
        return True


class _Redacting:
    """Replace the configured keys, and whatever follows ``Bearer``, in each formatted line.

    Done on the finished line, not the record: other handlers (pytest's) see the record as logged.
    """

    secrets: tuple[str, ...] = ()

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)  # type: ignore[misc]
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, _REDACTED)
        if "earer" in line or "EARER" in line:
            line = _BEARER.sub(r"\1" + _REDACTED, line)
        return line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC with milliseconds: 2026-12-01T17:37:50.123Z."""
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z"


class TextFormatter(_Redacting, logging.Formatter):
    pass


class JsonLineFormatter(_Redacting, JsonFormatter):
    pass


def formatter(log_format: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    made: _Redacting
    if log_format == "json":
        made = JsonLineFormatter(list(_JSON_FIELDS), rename_fields=_RENAMED)
    elif log_format == "text":
        made = TextFormatter(_TEXT)
    else:
        raise ValueError(f"log format must be one of {FORMATS}, not {log_format!r}")
    made.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    return made


def configure(
    log_format: str = "text", level: str | int = "INFO", secrets: Iterable[str] = ()
) -> logging.Handler:
    """Install (or reconfigure) the process's one handler on the root logger; idempotent.

    Handlers others put on the root logger (pytest's, say) are left alone.
    """
    global _handler
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.set_name("coe")
    _handler.setFormatter(formatter(log_format, secrets))
    _handler.filters = [RequestIdFilter(None if log_format == "json" else "-")]
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    root.setLevel(level)
    # Fields no line of ours shows, not gathered for every record (the logging HOWTO's
    # "Optimization"): the caller's frame is ~10% of an access line's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    # Alembic announces its plugins and dialect at INFO whenever the registry checks the schema, and
    # the pool (a subclass, so not under SQLAlchemy's own quiet logger) each dispose: noise.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("coe_template.registry.db._BoundedPool").setLevel(logging.WARNING)
    # Connexion logs each refused request body (INFO for JSON, ERROR for a form) with jsonschema's
    # message, which quotes the whole value: the client's 400 says the same, shortened, and the
    # access line records it. A response that fails the spec (WARNING) is still logged.
    logging.getLogger("connexion.validators.json").setLevel(logging.WARNING)
    logging.getLogger("connexion.validators.form_data").setLevel(logging.CRITICAL)
    for name in _SILENCED:
        silenced = logging.getLogger(name)
        silenced.handlers = []
        silenced.propagate = False
        silenced.disabled = True
    return _handler

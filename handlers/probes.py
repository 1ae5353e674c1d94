"""``GET /livez`` and ``GET /readyz``: is the process up, and can it answer?

Live: the process answers HTTP (an orchestrator restarts it otherwise). Ready: it
has a ``production`` version loaded and the database answers ``SELECT 1`` (``Registry.ping``) within
``COE_READY_TIMEOUT`` seconds (an orchestrator sends it no traffic otherwise). A
stopped database makes the probe answer 503 in that time, not hang: the query runs
in a thread of its own (:mod:`handlers.bounded`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from connexion.lifecycle import ConnexionResponse

from coe_template.errors import DatabaseUnavailable, Unavailable
from coe_template.serving import ModelNotLoaded
from handlers import problems
from handlers.bounded import database_calls
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.served import model_ref_schema

log = logging.getLogger(__name__)


@enveloped()
def live() -> dict:
    return {"status": "live"}


def _database_problem(timeout: float) -> str | None:
    registry = services().registry
    try:
        database_calls.run(f"ready-{id(registry)}", registry.ping, timeout)
    except TimeoutError:
        log.warning("not ready: the database did not answer SELECT 1 within %g s", timeout)
        return f"database: no answer to SELECT 1 within {timeout:g} s"
    except DatabaseUnavailable as exc:  # the package's words: what a client may be told
        # The driver's message (the cause) can name hosts and ports: the log gets it, the open probe does not.
        log.warning("not ready: %s (cause: %s)", exc, exc.__cause__)
        return f"database: {exc}"
    # Anything else is a bug, not the database being away: the registry's engine turns every driver
    # failure into DatabaseUnavailable (coe_template/registry/db.py), so it is a 500 like any other.
    return None


def ready() -> ConnexionResponse | tuple:
    found = services()
    not_ready = []
    try:
        model = model_ref_schema.dump(found.server.current)
    except ModelNotLoaded:
        model = None
        not_ready.append("model: no production version loaded")
    database = _database_problem(found.settings.ready_timeout)
    if database is not None:
        not_ready.append(database)
    if not_ready:
        return problems.response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "not ready: " + "; ".join(not_ready),
            headers={"Retry-After": str(Unavailable.retry_after)},
        )
    return _ready(model)


@enveloped()
def _ready(model: dict) -> dict:
    return {"status": "ready", "model": model, "database": "ok"}

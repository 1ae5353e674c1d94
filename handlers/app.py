"""The app factory: the spec, the registry, the model server and the cross-cutting pieces."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from connexion import FlaskApp
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver

from coe_template.bootstrap import Observers, configure_logging, serving_services
from coe_template.observability import metrics as observed
from coe_template.serving import ModelNotLoaded
from config.settings import Settings
from handlers import inloop, metrics, problems, views
from handlers.context import EXTENSION
from handlers.middleware.cors import CORS
from handlers.middleware.docs import Docs
from handlers.middleware.headers import SecurityHeaders
from handlers.middleware.limits import BodyBudget, BodyDeadline, BodySizeLimit, InFlightLimit
from handlers.middleware.observe import Observe, Routes
from handlers.middleware.request_id import RequestId
from handlers.middleware.routing import AllowedMethods, PathIntegers, UnroutedNotFound
from handlers.security import KeyGuard
from handlers.validation import VALIDATORS, AsciiIntegers

log = logging.getLogger(__name__)
SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"

# Connexion logs this for every request to an operation with two media types
# (POST /batch-predictions takes JSON or a CSV upload): expected, so not logged.
logging.getLogger("connexion.operations.openapi3").addFilter(
    lambda record: "accepts multiple content types" not in record.getMessage()
)
#: What a browser on an allowed origin may send and read (CORS).
CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Job-Token", "X-Request-ID")
CORS_EXPOSED = ("Location", "Retry-After", "X-Request-ID")


def create_app(settings: Settings | None = None) -> FlaskApp:
    """Build the service; the ``production`` version is loaded here, before gunicorn forks."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    if not settings.admin_keys:  # said once at start-up (before the fork), not discovered by a 401
        log.warning(
            "no COE_ADMIN_KEYS: the registry is read-only (training, promoting, archiving and cancelling "
            "answer 401); predictions and reads are open"
        )
    services = serving_services(
        settings,
        Observers(
            batch=observed.batch_chunk,
            training=observed.training_job,
            purged=observed.batch_purge,
            ledger=observed.ledger,
            expired=observed.expired,
            database=observed.count_database_errors,
        ),
    )
    server = services.server

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        # Runs in each worker process: threads and connections do not survive a fork.
        if observed.serving not in server.listeners:  # set here, not in gunicorn's master: a per-worker gauge
            server.listeners.append(observed.serving)
        with suppress(ModelNotLoaded):
            observed.serving(server.current)
        services.start()
        try:
            yield {"admin_keys": settings.admin_keys, "read_keys": settings.read_keys}
        finally:
            services.stop()  # each runner finishes what it holds within a short grace, or gives it back

    # Compact JSON by the C encoder: Connexion's default (indent=2) takes the pure-Python one.
    jsonifier = Jsonifier(json, separators=(",", ":"), sort_keys=True)
    app = FlaskApp(__name__, specification_dir=SPEC_DIR, lifespan=lifespan, jsonifier=jsonifier)
    app.add_api(
        "spec.yaml",
        resolver=RelativeResolver("handlers"),
        pythonic_params=True,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
        validator_map=VALIDATORS,
        uri_parser_class=AsciiIntegers,
    )
    # Before the Swagger UI and the router: a key in the query string is refused everywhere, and with
    # COE_REQUIRE_KEYS_FOR_READS every path but the probes and the docs needs a key (handlers/security.py).
    app.add_middleware(
        KeyGuard,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        keys=(settings.admin_keys | settings.read_keys) if settings.require_keys_for_reads else None,
    )
    app.add_middleware(
        BodySizeLimit,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
        whole_upload_bytes=settings.max_json_batch_bytes,
        upload_paths=("/batch-predictions",),
    )
    # After the size check (inserted at the same position, so inside it): only bounded bodies are read,
    # within one budget for the whole process.
    app.add_middleware(
        BodyDeadline,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        seconds=settings.body_timeout,
        min_rate=settings.body_min_rate,
        budget=BodyBudget(settings.body_budget_bytes),
    )
    # Inside the deadline: only requests whose body is all in count as in progress.
    # Liveness is exempt: a busy worker answering 503 would be restarted by an orchestrator.
    app.add_middleware(
        InFlightLimit,
        position=MiddlewarePosition.BEFORE_SWAGGER,
        limit=settings.limit_concurrency,
        exempt=("/livez",),
    )
    # Innermost before the Swagger UI (inside the key guard and the limits): /docs and /openapi.json.
    app.add_middleware(Docs, position=MiddlewarePosition.BEFORE_SWAGGER)
    app.add_middleware(AllowedMethods, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(PathIntegers, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(UnroutedNotFound, position=MiddlewarePosition.BEFORE_SECURITY)
    app.add_middleware(RequestId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    # Inside RequestId (the id is set), outside the exception handlers (it sees the status sent).
    app.add_middleware(
        Observe,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        routes=Routes(SPEC_DIR / "spec.yaml"),
        access=settings.access_log,
    )
    # Inside RequestId, outside the exception middleware: problems and CORS answers get the headers too.
    app.add_middleware(SecurityHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    if settings.cors_origins:  # CORS is off unless origins are named
        app.add_middleware(
            CORS,
            position=MiddlewarePosition.BEFORE_EXCEPTION,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=list(CORS_HEADERS),
            expose_headers=list(CORS_EXPOSED),
            max_age=600,
        )
    problems.register(app)
    # The spec's x-coe-in-loop operations run in the event loop's thread, the others in a2wsgi's pool.
    app.app.extensions[inloop.EXTENSION] = inloop.install(app, SPEC_DIR / "spec.yaml")
    views.decorate_once(app.app)
    app.app.extensions[EXTENSION] = services
    app.app.extensions[metrics.EXTENSION] = metrics.DatabaseCounts(
        services.registry, services.batch, services.training, quality=services.quality
    )
    return app

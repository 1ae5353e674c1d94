"""The app factory: the spec, the registry, the model server and the cross-cutting pieces."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connexion import FlaskApp
from connexion.jsonifier import Jsonifier
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver

from coe_template.batch.jobs import BatchJobs
from coe_template.batch.runner import BatchRunner
from coe_template.registry import PRODUCTION, AliasNotFound, ModelNotFound, Registry, RegistryError
from coe_template.serving import ModelServer
from config.settings import Settings
from handlers import problems
from handlers.context import EXTENSION, Services
from handlers.limits import BodySizeLimit
from handlers.request_id import RequestId
from handlers.routing import AllowedMethods, PathIntegers, UnroutedNotFound
from handlers.validation import VALIDATORS

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"

# Connexion logs this for every request to an operation with two media types
# (POST /batch-predictions takes JSON or a CSV upload): expected, so not logged.
logging.getLogger("connexion.operations.openapi3").addFilter(
    lambda record: "accepts multiple content types" not in record.getMessage()
)


def create_app(settings: Settings | None = None) -> FlaskApp:
    """Build the service; the ``production`` version is loaded here, before gunicorn forks."""
    settings = settings or Settings.from_env()
    registry = Registry.open(settings.db_url, settings.model_store)
    server = ModelServer(registry, settings.model_name, settings.refresh_seconds)
    try:
        server.refresh()
    except (ModelNotFound, AliasNotFound):
        raise RegistryError(
            f"model {settings.model_name!r} has no {PRODUCTION} version in {settings.db_url}: "
            "train one first (`coe-template train`, or `make serve`)"
        ) from None

    batch = BatchJobs(registry, settings.batch_chunk_size, settings.batch_lease_seconds)
    runner = BatchRunner(batch, lambda name, version: server.pinned(name, version).artifacts)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        # Runs in each worker process: threads and connections do not survive a fork.
        server.start()
        if settings.batch_in_server:
            runner.start()
        try:
            yield {"admin_keys": settings.admin_keys, "read_keys": settings.read_keys}
        finally:
            runner.stop()
            server.stop()

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
    )
    app.add_middleware(BodySizeLimit, position=MiddlewarePosition.BEFORE_SWAGGER,
                       max_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_bytes,
                       upload_paths=("/batch-predictions",))
    app.add_middleware(AllowedMethods, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(PathIntegers, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(UnroutedNotFound, position=MiddlewarePosition.BEFORE_SECURITY)
    app.add_middleware(RequestId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    problems.register(app)
    app.app.extensions[EXTENSION] = Services(settings, registry, server, batch)
    return app

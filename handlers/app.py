"""The app factory: the spec, the model, and the cross-cutting pieces, wired once."""

from __future__ import annotations

from pathlib import Path

from connexion import FlaskApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver

from coe_template.store import latest_run_id, load_artifacts
from config.settings import Settings
from handlers import problems
from handlers.context import EXTENSION
from handlers.limits import BodySizeLimit

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"


def create_app(settings: Settings | None = None) -> FlaskApp:
    """Build the service; the serving model is loaded here, once per process."""
    settings = settings or Settings.from_env()
    artifacts = load_artifacts(settings.run_id or latest_run_id(settings.model_store), settings.model_store)

    app = FlaskApp(__name__, specification_dir=SPEC_DIR)
    app.add_api(
        "spec.yaml",
        resolver=RelativeResolver("handlers"),
        pythonic_params=True,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
    )
    app.add_middleware(BodySizeLimit, position=MiddlewarePosition.BEFORE_SWAGGER,
                       max_bytes=settings.max_body_bytes)
    problems.register(app)
    app.app.extensions[EXTENSION] = artifacts
    return app

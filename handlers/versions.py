"""``/models/{model-name}/versions``: train, inspect, archive (or cancel) and predict with versions."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus

from coe_template.errors import Busy, InvalidInput
from coe_template.model.args import lookup_arg, parse_args
from coe_template.observability import metrics
from coe_template.registry import StillTraining
from coe_template.registry.schema import utc
from coe_template.registry.training import BUNDLED
from handlers import performance as performance_resource
from handlers import predictions as predictions_resource
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.quality import quality_schema
from handlers.schemas.versions import version_schema


@enveloped()
def search(
    model_name: str, status: str | None = None, page_size: int = 20, page_token: str | None = None
) -> dict:
    versions, after = services().registry.list_versions(
        model_name, status=status, after=int(page_token or 0), limit=page_size
    )
    return {
        "versions": version_schema.dump(versions, many=True),
        "next_page_token": None if after is None else str(after),
    }


@enveloped(HTTPStatus.ACCEPTED)
def create(model_name: str, body: dict | None = None) -> tuple[dict, dict]:
    """Record the version and its training job; a runner (in a server or a worker) trains it."""
    ctx = services()
    settings = ctx.settings
    args = parse_args((body or {}).get("args", {}), defaults=ctx.training_args)
    data = (body or {}).get("data", BUNDLED)
    try:
        version = ctx.training.create(model_name, args, max_training=settings.max_trainings, data=data)
    except Busy:
        metrics.training_refused("busy")
        raise
    location = f"/models/{model_name}/versions/{version.version}"
    return {"version": version_schema.dump(version)}, {"Location": location}


@enveloped()
def get(model_name: str, version: int) -> dict:
    return {"version": version_schema.dump(services().registry.get_version(model_name, version))}


@enveloped()
def delete(model_name: str, version: int) -> dict:
    """Archive a version; one still training (queued or running) is cancelled instead: failed, with its job."""
    ctx = services()
    try:
        return {"version": version_schema.dump(ctx.registry.archive_version(model_name, version))}
    except StillTraining:
        return {"version": version_schema.dump(ctx.training.cancel(model_name, version))}


@enveloped()
def performance(model_name: str, version: int, filter_: str | None = None) -> dict:
    return performance_resource.part(services().registry.performance(model_name, version), filter_)


@enveloped()
def quality(model_name: str, version: int, since: str | None = None, until: str | None = None) -> dict:
    """The version's predictions on record joined with their labels (the version must exist)."""
    ctx = services()
    period = _moment("since", since), _moment("until", until)
    ctx.registry.get_version(model_name, version)  # the NotFound that names what is missing
    return {"quality": quality_schema.dump(ctx.quality.of_version(model_name, version, *period))}


def _moment(name: str, value: str | None) -> datetime | None:
    """A query's time (ISO 8601; without an offset, UTC)."""
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(f"{name} is not an ISO 8601 time: {value[:40]!r}") from None


@enveloped()
def args(model_name: str, version: int) -> dict:
    return {"args": services().registry.get_version(model_name, version).args}


@enveloped()
def arg(model_name: str, version: int, arg: str) -> dict:
    stored = services().registry.get_version(model_name, version).args
    return {"args": {arg: lookup_arg(stored, arg)}}


@enveloped()
def predict(model_name: str, version: int, body: dict, explain: bool) -> tuple[dict, dict]:
    served = services().server.ready(model_name, version)
    return predictions_resource.answer(served, body, explain, None, "pinned")

"""``/batch-predictions``: jobs over a finite set of items, results stored and read back by key."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from connexion.exceptions import BadRequestProblem, ProblemException, UnsupportedMediaTypeProblem
from flask import request
from werkzeug.datastructures import FileStorage

from coe_template.batch.items import read_csv, to_items
from coe_template.batch.jobs import KeyReused, new_job_token
from coe_template.errors import Conflict
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.batch_predictions import job_schema, result_schema

#: The request header that makes a create safe to retry (the spec's ``Idempotency-Key`` parameter).
IDEMPOTENCY_KEY = "Idempotency-Key"


def _items_from_request(body: Any, file: FileStorage | None) -> list:
    if request.mimetype == "application/json":
        return to_items(body["items"])
    if request.mimetype == "text/csv":
        return read_csv(request.get_data())  # an empty body arrives as {}, not b""
    if request.mimetype == "multipart/form-data" and file is not None:
        try:
            return read_csv(file.read())
        finally:
            file.close()
    # With several media types declared, a body of no declared type skips validation: refuse it here.
    raise UnsupportedMediaTypeProblem(
        detail=f"send application/json, text/csv or multipart/form-data, not {request.mimetype or 'no Content-Type'}"
    )


@enveloped(HTTPStatus.ACCEPTED)
def create(body: Any = None, file: FileStorage | None = None, model_version: int | None = None) -> tuple:
    items = _items_from_request(body, file)
    if isinstance(body, dict) and "model_version" in body:
        if model_version is not None:
            raise BadRequestProblem(
                detail="model_version is given both in the query and in the body: give it once"
            )
        model_version = body["model_version"]
    ctx = services()
    token, digest = new_job_token()
    key = request.headers.get(IDEMPOTENCY_KEY)
    try:
        job, created = ctx.batch.create(
            ctx.settings.model_name, items, version=model_version, idempotency_key=key, token_sha256=digest
        )
    except KeyReused as reused:  # the client must learn which header it was: the package knows no headers
        raise Conflict(
            f"{IDEMPOTENCY_KEY} {reused.key!r} was already used for a different request (job {reused.job_id})"
        ) from reused
    # Shown once: a replay of the same Idempotency-Key gets the job but no new token (the first stays valid).
    return (
        {"job": job_schema.dump(job), "job_token": token if created else None},
        {"Location": f"/batch-predictions/{job.id}"},
    )


@enveloped()
def search(page_size: int, page_token: str | None = None) -> dict:
    jobs, after = services().batch.list(after=page_token, limit=page_size)
    return {"jobs": job_schema.dump(jobs, many=True), "next_page_token": after}


@enveloped()
def get(job_id: str) -> dict:
    return {"job": job_schema.dump(services().batch.get(job_id))}


NOT_THE_JOBS_TOKEN = (
    "this Job-Token is not the one this job was created with: only the client that created "
    "the job, or an admin key, may cancel or delete it"
)


@enveloped()
def delete(job_id: str, token_info: dict[str, Any]) -> dict:
    """An admin key, or the job's own token (Connexion has checked that one of them was sent)."""
    batch = services().batch
    if token_info.get("sub") != "admin" and not batch.holds_token(job_id, token_info.get("job_token")):
        raise ProblemException(status=403, title="Forbidden", detail=NOT_THE_JOBS_TOKEN)
    cancelled = batch.cancel_or_delete(job_id)
    return {"id": job_id, "outcome": "deleted" if cancelled is None else "cancelled"}


@enveloped()
def results(job_id: str, page_size: int, page_token: str | None = None) -> dict:
    page, after = services().batch.results(
        job_id, after=int(page_token) if page_token else -1, limit=page_size
    )
    return {
        "results": result_schema.dump(page, many=True),
        "next_page_token": None if after is None else str(after),
    }


@enveloped()
def result(job_id: str, item_id: str) -> dict:
    return {"result": result_schema.dump(services().batch.result(job_id, item_id))}

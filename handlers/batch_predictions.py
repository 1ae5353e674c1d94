"""``/batch-predictions``: jobs over a finite set of items, results stored and read back by key."""

from __future__ import annotations

import hashlib
from http import HTTPStatus
from typing import IO, Any

from connexion.exceptions import BadRequestProblem, ProblemException, UnsupportedMediaTypeProblem
from flask import request
from werkzeug.datastructures import FileStorage

from coe_template.batch.items import Checker, csv_chunks, to_items
from coe_template.batch.jobs import JobInfo, KeyReused, new_job_token
from coe_template.errors import Conflict
from config.settings import Settings
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.batch_predictions import job_schema, result_schema
from handlers.security import known

#: The request header that makes a create safe to retry (the spec's ``Idempotency-Key`` parameter).
IDEMPOTENCY_KEY = "Idempotency-Key"


def client_of(settings: Settings) -> str:
    """Who queues a job, for quotas: the bearer key sent, if it is one of ours (only a digest of it is
    kept), else the client's address as the server sees it (a proxy's ``X-Forwarded-For`` counts only
    from the addresses gunicorn's ``forwarded_allow_ips`` trusts: uvicorn applies it before us)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token and known(token, settings.admin_keys | settings.read_keys):
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"addr:{request.remote_addr or 'unknown'}"


def _csv_stream(file: FileStorage | None) -> IO[bytes]:
    """The CSV to read as it comes: the body itself, or the form's file (spooled to disk when large)."""
    if request.mimetype == "text/csv":
        return request.stream  # an empty body reads as b"": the CSV file is empty
    if request.mimetype == "multipart/form-data" and file is not None:
        return file.stream
    # With several media types declared, a body of no declared type skips validation: refuse it here.
    raise UnsupportedMediaTypeProblem(
        detail=f"send application/json, text/csv or multipart/form-data, not {request.mimetype or 'no Content-Type'}"
    )


@enveloped(HTTPStatus.ACCEPTED)
def create(body: Any = None, file: FileStorage | None = None, model_version: int | None = None) -> tuple:
    if isinstance(body, dict) and "model_version" in body:
        if model_version is not None:
            raise BadRequestProblem(
                detail="model_version is given both in the query and in the body: give it once"
            )
        model_version = body["model_version"]
    ctx = services()
    token, digest = new_job_token()
    key = request.headers.get(IDEMPOTENCY_KEY)
    client = client_of(ctx.settings)
    name = ctx.settings.model_name
    try:
        if request.mimetype == "application/json":
            items = to_items(body["items"])
            job, created = ctx.batch.create(
                name, items, model_version, idempotency_key=key, token_sha256=digest, client=client
            )
        else:
            job, created = _upload(_csv_stream(file), name, model_version, key, digest, client)
    except KeyReused as reused:  # the client must learn which header it was: the package knows no headers
        raise Conflict(
            f"{IDEMPOTENCY_KEY} {reused.key!r} was already used for a different request (job {reused.job_id})"
        ) from reused
    # Shown once: a replay of the same Idempotency-Key gets the job but no new token (the first stays valid).
    return (
        {"job": job_schema.dump(job), "job_token": token if created else None},
        {"Location": f"/batch-predictions/{job.id}"},
    )


def _upload(
    stream: IO[bytes], name: str, version: int | None, key: str | None, digest: str, client: str
) -> tuple[JobInfo, bool]:
    """A CSV read, checked and stored a chunk at a time: the memory it takes does not grow with its rows."""
    batch = services().batch
    checker = Checker()
    chunks = (checker.add(ids, texts) for ids, texts in csv_chunks(stream, batch.chunk_size))
    try:
        return batch.upload(
            name,
            chunks,
            version,
            idempotency_key=key,
            token_sha256=digest,
            client=client,
            check=checker.check,
        )
    finally:
        stream.close()


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

"""Creating batch jobs: a whole list, or a stream written a chunk at a time; quotas and admission.

An upload is written, a few chunks per short transaction, to a job ``uploading`` that no
runner claims and no reader sees; it becomes ``queued`` in one transaction that checks the
quotas (one admission at a time). A job left ``uploading`` by a killed process is deleted
by a later upload, once stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from coe_template.batch.items import BatchInputError, Item
from coe_template.batch.records import (
    ACTIVE,
    UPLOADING,
    BatchStore,
    JobInfo,
    _chunks,
    _inputs,
    _jobs,
    compact,
)
from coe_template.batch.schema import BatchJob
from coe_template.errors import Busy, Conflict, QuotaExceeded, Unavailable
from coe_template.registry import PRODUCTION
from coe_template.registry.db import bulk_insert, reader
from coe_template.registry.schema import utcnow

log = logging.getLogger(__name__)

#: Each write of an upload in progress renews it, and one write is at most :data:`WRITE_CHARS`.
STALE_UPLOAD_SECONDS = 600.0
#: Characters of chunk inputs written per transaction while an upload streams: short transactions,
#: few enough of them (5 million tiny items: ~100).
WRITE_CHARS = 1 << 19
#: Stale uploads deleted when a new one starts: cleaning stays a small cost of each upload.
_STALE_PER_UPLOAD = 5
#: Seconds a client refused for a quota is told to wait: open jobs shrink as chunks are done.
QUOTA_RETRY_SECONDS = 60
#: PostgreSQL: the advisory lock that makes admissions one at a time (quotas are sums over jobs).
_ADMISSION_LOCK = 0x636F6562  # "coeb"


class KeyReused(Conflict):
    """A job's idempotency key came back with a different request: which key, and whose job it is."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"key {key!r} was already used for a different request (job {job_id})")
        self.key = key
        self.job_id = job_id


@dataclass(frozen=True)
class Quotas:
    """Items of open jobs (queued or running, not yet done) allowed per client and in all; 0: no bound."""

    per_client: int = 0
    overall: int = 0


#: No bound on open items: the default.
NO_QUOTAS = Quotas()

_OPEN_ITEMS = select(func.coalesce(func.sum(_jobs.c.total_items - _jobs.c.done_items), 0)).where(
    _jobs.c.status.in_(ACTIVE)
)


class Uploads(BatchStore):
    """The creating side of :class:`~coe_template.batch.jobs.BatchJobs`."""

    chunk_size: int
    quotas: Quotas

    def create(
        self,
        name: str,
        items: Sequence[Item],
        version: int | None = None,
        idempotency_key: str | None = None,
        token_sha256: str | None = None,
        client: str | None = None,
    ) -> tuple[JobInfo, bool]:
        """Record a job with all its items; return it and whether it is new (see :meth:`upload`)."""
        if not items:
            raise BatchInputError("no items: a batch needs at least one")
        if idempotency_key is not None:  # a replay is answered without writing (or waiting to)
            whole = hashlib.sha256(compact([name, version, items]).encode()).hexdigest()
            existing = self._by_idempotency_key(idempotency_key, whole)
            if existing is not None:
                return existing, False
        size = self.chunk_size
        chunks = (items[first : first + size] for first in range(0, len(items), size))
        return self.upload(
            name, chunks, version, idempotency_key=idempotency_key, token_sha256=token_sha256, client=client
        )

    def upload(
        self,
        name: str,
        chunks: Iterable[Sequence[Item]],
        version: int | None = None,
        *,
        idempotency_key: str | None = None,
        token_sha256: str | None = None,
        client: str | None = None,
        check: Callable[[Callable[[], Iterator[list[str]]]], None] | None = None,
    ) -> tuple[JobInfo, bool]:
        """Record a job whose items arrive a chunk at a time (``chunk_size`` each but the last); return it
        and whether it is new.

        Each chunk is written as it comes, a few per short transaction, to a job ``uploading``
        that no runner claims and no reader sees; once all are in, ``check`` (given a way to
        read the ids again) may refuse the whole batch; then, in one transaction, the quotas
        are checked and the job becomes ``queued``. Whatever stops it before (a refusal, an
        error) deletes the job and its chunks, and a job left ``uploading`` by a killed
        process is deleted by a later upload, once stale.

        A repeated ``idempotency_key`` with the same request returns the first job,
        whatever happened to the registry since (and keeps the first job's token:
        ``token_sha256`` is stored only on a new job).
        """
        self._drop_stale_uploads()
        job_id = str(uuid.uuid4())
        with self._session() as session, session.begin():
            session.add(
                BatchJob(
                    id=job_id,
                    model_name=name,
                    model_version=version or 0,  # set when queued
                    status=UPLOADING,
                    request_sha256="",
                    token_sha256=token_sha256,
                    total_items=0,
                    total_chunks=0,
                    client=client,
                    created_at=utcnow(),
                )
            )
        try:
            # The request as sent (None means production): sha256 of [name, version, [[id, text], ...]].
            digest = hashlib.sha256(f"{compact([name, version])[:-1]},[".encode())
            total = self._write_chunks(job_id, chunks, digest, client)
            if check is not None:
                check(lambda: self._stored_ids(job_id))
            if not total:
                raise BatchInputError("no items: a batch needs at least one")
            digest.update(b"]]")
            return self._admit(job_id, name, version, idempotency_key, digest.hexdigest(), client, total)
        except BaseException:
            self._drop(job_id)
            raise

    def _write_chunks(
        self, job_id: str, chunks: Iterable[Sequence[Item]], digest: Any, client: str | None
    ) -> int:
        """Write the chunks as they come, a few per transaction; the items written."""
        mine, everyone = self._open_items(client)
        rows: list[tuple[Any, ...]] = []
        inputs: list[tuple[str, int, str]] = []
        chars = total = number = 0
        for chunk in chunks:
            stored = compact(chunk)  # [[id, text], ...]: what a chunk's input row holds
            digest.update(f"{',' if number else ''}{stored[1:-1]}".encode())
            rows.append((job_id, number, total, total + len(chunk) - 1, "pending", None, None, 0))
            inputs.append((job_id, number, stored))
            total += len(chunk)
            number += 1
            chars += len(stored)
            self._check_quotas(
                client, mine, everyone, total, whole=False
            )  # refused early rather than written in vain
            if chars >= WRITE_CHARS:
                self._write(job_id, rows, inputs, total, number)
                rows, inputs, chars = [], [], 0
        if rows:
            self._write(job_id, rows, inputs, total, number)
        return total

    def _write(
        self,
        job_id: str,
        rows: list[tuple[Any, ...]],
        inputs: list[tuple[str, int, str]],
        total: int,
        number: int,
    ) -> None:
        with self.engine.begin() as connection:
            alive = connection.execute(
                update(_jobs)
                .where(_jobs.c.id == job_id, _jobs.c.status == UPLOADING)
                .values(total_items=total, total_chunks=number, created_at=utcnow())
            ).rowcount
            if not alive:
                raise Unavailable(
                    f"this upload was not written to for {STALE_UPLOAD_SECONDS:g} s and was dropped as "
                    "abandoned; send it again"
                )
            bulk_insert(connection, _chunks, rows)
            bulk_insert(connection, _inputs, inputs)

    def _stored_ids(self, job_id: str) -> Iterator[list[str]]:
        """The ids of an upload's chunks as written, in order, a chunk at a time."""
        after = -1
        while True:
            with reader(self.engine).begin() as connection:
                page = connection.execute(
                    select(_inputs.c.number, _inputs.c["items"])
                    .where(_inputs.c.job_id == job_id, _inputs.c.number > after)
                    .order_by(_inputs.c.number)
                    .limit(20)
                ).all()
            if not page:
                return
            for number, items in page:
                yield [item_id for item_id, _ in json.loads(items)]
                after = number

    def _open_items(self, client: str | None) -> tuple[int, int]:
        """Items of open jobs not yet done: the client's, and everyone's."""
        with reader(self.engine).begin() as connection:
            return self._open(connection, client)

    @staticmethod
    def _open(connection: Connection, client: str | None) -> tuple[int, int]:
        everyone = int(connection.execute(_OPEN_ITEMS).scalar_one())
        if client is None:
            return 0, everyone
        return int(connection.execute(_OPEN_ITEMS.where(_jobs.c.client == client)).scalar_one()), everyone

    def _check_quotas(
        self, client: str | None, mine: int, everyone: int, items: int, whole: bool = True
    ) -> None:
        """Refuse ``items`` more (``whole``: the batch's count; else only its first ones, read so far)."""
        per_client, overall = self.quotas.per_client, self.quotas.overall
        more = f"{'' if whole else 'at least '}{items} more"
        if per_client and client is not None and mine + items > per_client:
            raise QuotaExceeded(
                f"this client's open batch jobs hold {mine} items not yet done; {more} would exceed "
                f"the limit of {per_client} per client; retry once some are done, or send fewer",
                retry_after=QUOTA_RETRY_SECONDS,
            )
        if overall and everyone + items > overall:
            raise Busy(
                f"the open batch jobs hold {everyone} items not yet done; {more} would exceed "
                f"the server's limit of {overall}; retry later",
                retry_after=QUOTA_RETRY_SECONDS,
            )

    def _admit(
        self,
        job_id: str,
        name: str,
        version: int | None,
        key: str | None,
        digest: str,
        client: str | None,
        total: int,
    ) -> tuple[JobInfo, bool]:
        """Queue a fully written upload, within the quotas; or return the job its idempotency key names."""
        if key is not None:
            existing = self._by_idempotency_key(key, digest)
            if existing is not None:
                self._drop(job_id)
                return existing, False
        if version is None:
            version = self.registry.get_alias(name, PRODUCTION)
        found = self.registry.get_version(name, version)  # unknown model or version: LookupError
        if found.status != "ready":
            raise Conflict(
                f"version {version} of {name!r} is {found.status}: batch jobs need a ready version"
            )
        try:
            with self._session() as session, session.begin():  # SQLite: BEGIN IMMEDIATE, one writer at a time
                connection = session.connection()
                if self.postgres:  # admissions one at a time: two must not both fit where one does
                    connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _ADMISSION_LOCK})
                self._check_quotas(client, *self._open(connection, client), total)
                queued = connection.execute(
                    update(_jobs)
                    .where(_jobs.c.id == job_id, _jobs.c.status == UPLOADING)
                    .values(
                        status="queued",
                        model_version=version,
                        idempotency_key=key,
                        request_sha256=digest,
                        created_at=utcnow(),  # its place in the queue: when it became claimable
                    )
                ).rowcount
                if not queued:
                    raise Unavailable(
                        f"this upload was not written to for {STALE_UPLOAD_SECONDS:g} s and was dropped as "
                        "abandoned; send it again"
                    )
                job = session.get_one(BatchJob, job_id)
                info = JobInfo.of(job)
        except IntegrityError:
            # The same key arrived concurrently: the other request's job is the answer.
            if key is not None:
                existing = self._by_idempotency_key(key, digest)
                if existing is not None:
                    self._drop(job_id)
                    return existing, False
            raise
        self.created.set()
        return info, True

    def _drop(self, job_id: str) -> None:
        """Delete an upload that will not be queued, with its chunks; logged, not raised, if that fails
        (a later upload deletes it once stale)."""
        try:
            with self.engine.begin() as connection:
                uploading = select(_jobs.c.id).where(_jobs.c.id == job_id, _jobs.c.status == UPLOADING)
                if connection.execute(uploading).first() is None:
                    return  # queued meanwhile, or already gone
                for table in (_chunks, _inputs):
                    connection.execute(delete(table).where(table.c.job_id == job_id))
                connection.execute(delete(_jobs).where(_jobs.c.id == job_id))
        except Exception as exc:
            log.warning("could not delete the refused upload %s (deleted later, once stale): %s", job_id, exc)

    def _drop_stale_uploads(self) -> None:
        """Delete a few uploads left behind by a killed process: not written to for STALE_UPLOAD_SECONDS."""
        cutoff = utcnow() - timedelta(seconds=STALE_UPLOAD_SECONDS)
        with reader(self.engine).begin() as connection:
            stale = (
                connection.execute(
                    select(_jobs.c.id)
                    .where(_jobs.c.status == UPLOADING, _jobs.c.created_at < cutoff)
                    .limit(_STALE_PER_UPLOAD)
                )
                .scalars()
                .all()
            )
        for job_id in stale:
            log.info("deleting batch upload %s: not written to for %g s", job_id, STALE_UPLOAD_SECONDS)
            self._drop(job_id)

    def _by_idempotency_key(self, key: str, digest: str) -> JobInfo | None:
        with self._session(read_only=True) as session:
            job = session.scalar(select(BatchJob).where(BatchJob.idempotency_key == key))
            if job is None:
                return None
            if job.request_sha256 != digest:
                raise KeyReused(key, job.id)
            return JobInfo.of(job, self.retention)

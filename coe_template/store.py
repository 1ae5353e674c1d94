"""Each training run as a directory of artifacts, written atomically, read back verified.

joblib files can run code when loaded, so a run is only loaded when every file
still has the sha256 digest recorded when the run was written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.pipeline import Pipeline

from coe_template.args import lookup_arg
from coe_template.compiled import Predictor, predictor_for
from coe_template.errors import ArtifactUnavailable, StorageFull
from coe_template.train import TrainedModel

RUN_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{6}")
MODEL_FILE = "model.joblib"
RECORD_FILE = "run.json"
#: Every file a run must have, each with a recorded digest.
RUN_FILES = (MODEL_FILE, "args.json", "labels.json", "threshold.json", "performance.json")


class ArtifactError(ArtifactUnavailable):
    """A run cannot be found or does not match what was written: the server's fault, never the client's."""


class RunNotFound(ArtifactError):
    """A run's directory or record is missing."""


@dataclass(frozen=True)
class Artifacts:
    run_id: str
    pipeline: Pipeline
    labels: list[str]
    threshold: float
    args: dict[str, Any]
    performance: dict[str, Any]
    record: dict[str, Any]
    #: What computes probabilities: the pipeline compiled at load time, or the pipeline itself.
    predictor: Predictor

    def arg(self, name: str) -> Any:
        return lookup_arg(self.args, name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def runs_dir(store: Path) -> Path:
    return Path(store) / "runs"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def save_run(model: TrainedModel, store: Path) -> str:
    """Write a run into a hidden directory, then rename it into place.

    A crash leaves at most a hidden ``.tmp-*`` directory, never a half-written run;
    a full disk leaves nothing and raises :class:`StorageFull`.
    """
    run_id = new_run_id()
    runs = runs_dir(store)
    tmp = runs / f".tmp-{run_id}"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        _write_run(model, tmp, run_id)
        os.replace(tmp, runs / run_id)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"the model store's disk is full ({exc.strerror}): "
                              "no space left to write the run; free space and train again") from None
        raise
    return run_id


def _write_run(model: TrainedModel, tmp: Path, run_id: str) -> None:
    """Every file of a run, each flushed to disk, into ``tmp``."""
    joblib.dump(model.pipeline, tmp / MODEL_FILE)
    _write_json(tmp / "args.json", model.args.to_dict())
    _write_json(tmp / "labels.json", model.labels)
    _write_json(tmp / "threshold.json", model.threshold)
    _write_json(tmp / "performance.json", model.performance)
    files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
    _write_json(tmp / RECORD_FILE, {
        "run_id": run_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threshold": model.threshold,
        "dataset": model.dataset,
        "files": files,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
        },
    })
    for path in tmp.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())


def read_record(run_id: str, store: Path) -> dict[str, Any]:
    """A run's ``run.json``: when and from what it was made, and its files' digests."""
    if not RUN_ID.fullmatch(run_id):
        raise RunNotFound(f"not a run id: {run_id!r}")
    try:
        record = _read_json(runs_dir(store) / run_id / RECORD_FILE)
    except FileNotFoundError:
        raise RunNotFound(f"run {run_id}: its files are missing from the model store") from None
    except ValueError as exc:
        raise ArtifactError(f"run {run_id}: {RECORD_FILE} is damaged ({exc}); refusing to load it") from None
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise ArtifactError(f"run {run_id}: {RECORD_FILE} lists no file digests; refusing to load it")
    return record


def verify_run(run_id: str, store: Path, digests: Mapping[str, str]) -> Path:
    """Check every file of a run against ``digests``; return the run's directory."""
    if not RUN_ID.fullmatch(run_id):
        raise RunNotFound(f"not a run id: {run_id!r}")
    run = runs_dir(store) / run_id
    unlisted = [name for name in RUN_FILES if name not in digests]
    if unlisted:
        raise ArtifactError(f"run {run_id}: no recorded digest for {', '.join(unlisted)}; refusing to load it")
    for name, expected in digests.items():
        path = run / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise ArtifactError(
                f"run {run_id}: {name} does not match its recorded sha256 "
                f"(expected {expected}, found {actual}); refusing to load it"
            )
    return run


def load_artifacts(run_id: str, store: Path, digests: Mapping[str, str] | None = None) -> Artifacts:
    """Load a run after checking every file against its recorded digest.

    ``digests`` (from the registry's database) take precedence over the ones
    in ``run.json``, which sits beside the files it vouches for.
    """
    record = read_record(run_id, store)
    run = verify_run(run_id, store, record["files"] if digests is None else digests)
    pipeline = joblib.load(run / MODEL_FILE)
    return Artifacts(
        run_id=run_id,
        pipeline=pipeline,
        labels=_read_json(run / "labels.json"),
        threshold=float(_read_json(run / "threshold.json")),
        args=_read_json(run / "args.json"),
        performance=_read_json(run / "performance.json"),
        record=record,
        predictor=predictor_for(pipeline),
    )

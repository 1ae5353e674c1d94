"""Each training run as a set of files in an artifact store, written all at once, read back verified.

A run is only loaded when every file still has the sha256 digest recorded when the
run was written, checked on the bytes in memory, which are then read: no file is read
twice. The digests prove the bytes are the ones recorded, not who made them, so the
model itself is a file that cannot run code when read (``model.skops``, see
:mod:`coe_template.model.model_file`): a forged or imported one is refused by the types it
names before anything in it is built. Nothing here unpickles: a run stored as a pickle
(``model.joblib``, before this format) is refused, saying how to train it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sklearn
import skops
from sklearn.pipeline import Pipeline

from coe_template.artifacts.stores import RUN_ID, ArtifactError, ArtifactStore, RunNotFound, check_key
from coe_template.model.args import lookup_arg
from coe_template.model.compiled import Predictor, predictor_for
from coe_template.model.model_file import dumps as dump_pipeline
from coe_template.model.model_file import loads as load_pipeline
from coe_template.model.train import TrainedModel

__all__ = [
    "MODEL_FILE",
    "PICKLED_MODEL_FILE",
    "PickledModel",
    "RECORD_FILE",
    "RUN_FILES",
    "RUN_ID",
    "ArtifactError",
    "Artifacts",
    "RunNotFound",
    "check_run",
    "load_artifacts",
    "read_record",
    "read_verified",
    "refuse_pickled",
    "run_files",
    "runs_dir",
    "save_run",
    "sha256",
    "sha256_file",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
#: Where runs written before ``model.skops`` kept their model, as a pickle: never loaded.
PICKLED_MODEL_FILE = "model.joblib"
RECORD_FILE = "run.json"
#: Every file a run must have, each with a recorded digest.
RUN_FILES = (MODEL_FILE, "args.json", "labels.json", "threshold.json", "performance.json")


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


class PickledModel(ArtifactError):
    """A version stored as a pickle by an earlier release: refused unread, with how to train it again."""


def refuse_pickled(digests: Mapping[str, str], what: str, model: str | None = None) -> None:
    """:class:`PickledModel` if ``digests`` (a version's files) list a pickled model rather than ``model.skops``."""
    if PICKLED_MODEL_FILE in digests and MODEL_FILE not in digests:
        how = "`coe-template train`" + (f" or POST /models/{model}/versions" if model else "")
        raise PickledModel(
            f"{what} was stored as a pickle ({PICKLED_MODEL_FILE}), which this release no longer loads "
            f"(a pickle can run code when read): train it again with {how}, and promote the new version"
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def runs_dir(store: Path) -> Path:
    """Where a :class:`~coe_template.artifacts.stores.DirectoryStore` rooted at ``store`` keeps its runs."""
    return Path(store) / "runs"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def run_files(model: TrainedModel, run_id: str) -> dict[str, bytes]:
    """Every file of a run, ``run.json`` (when, from what, and every other file's digest) included."""
    files = {
        MODEL_FILE: dump_pipeline(model.pipeline),
        "args.json": _json(model.args.to_dict()),
        "labels.json": _json(model.labels),
        "threshold.json": _json(model.threshold),
        "performance.json": _json(model.performance),
    }
    files[RECORD_FILE] = _json(
        {
            "run_id": run_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "threshold": model.threshold,
            "dataset": model.dataset,
            "files": {name: sha256(data) for name, data in sorted(files.items())},
            "versions": {
                "python": platform.python_version(),
                "scikit-learn": sklearn.__version__,
                "skops": skops.__version__,
            },
        }
    )
    return files


def save_run(model: TrainedModel, store: ArtifactStore) -> tuple[str, dict[str, str]]:
    """Write a new run, all files or none; its id and every file's sha256 (for the registry to keep)."""
    run_id = new_run_id()
    files = run_files(model, run_id)
    store.put(run_id, files)
    return run_id, {name: sha256(data) for name, data in files.items() if name != RECORD_FILE}


def read_record(run_id: str, store: ArtifactStore) -> dict[str, Any]:
    """A run's ``run.json``: when and from what it was made, its files' digests (kept in the cache too)."""
    check_key(run_id)
    data = store.cache.get(run_id, RECORD_FILE) if store.cache is not None else None
    fetched = data is None
    if fetched:
        data = store.get(run_id, RECORD_FILE)
    if data is None:
        raise RunNotFound(f"run {run_id}: its files are missing from the artifact store")
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise ArtifactError(f"run {run_id}: {RECORD_FILE} is damaged ({exc}); refusing to load it") from None
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise ArtifactError(f"run {run_id}: {RECORD_FILE} lists no file digests; refusing to load it")
    if fetched and store.cache is not None:
        store.cache.keep(run_id, RECORD_FILE, data)
    return record


def read_verified(run_id: str, store: ArtifactStore, digests: Mapping[str, str]) -> dict[str, bytes]:
    """Every file of a run, each checked against ``digests``, as bytes in memory.

    A cached copy that does not match is dropped and fetched again; bytes from the
    store that do not match are refused, naming the file, and never cached.
    """
    check_key(run_id)
    unlisted = [name for name in RUN_FILES if name not in digests]
    if unlisted:
        raise ArtifactError(
            f"run {run_id}: no recorded digest for {', '.join(unlisted)}; refusing to load it"
        )
    files = {}
    for name, expected in digests.items():
        cached = store.cache.get(run_id, name) if store.cache is not None else None
        if cached is not None and sha256(cached) == expected:
            files[name] = cached
            continue
        if cached is not None and store.cache is not None:
            log.warning(
                "cached %s of run %s does not match its recorded sha256: fetching it again", name, run_id
            )
            store.cache.drop(run_id, name)
        data = store.get(run_id, name)
        actual = "missing" if data is None else sha256(data)
        if data is None or actual != expected:
            raise ArtifactError(
                f"run {run_id}: {name} does not match its recorded sha256 "
                f"(expected {expected}, found {actual}); refusing to load it"
            )
        if store.cache is not None:
            store.cache.keep(run_id, name, data)
        files[name] = data
    return files


def check_run(run_id: str, store: ArtifactStore, digests: Mapping[str, str], what: str, model: str) -> None:
    """What loading checks, short of compiling: the digests, then the model file's types and parameters
    (a promotion is refused here rather than by every server that would then fail to load it)."""
    refuse_pickled(digests, what, model)
    files = read_verified(run_id, store, digests)
    load_pipeline(files[MODEL_FILE], json.loads(files["args.json"]), f"run {run_id}: {MODEL_FILE}")


def load_artifacts(run_id: str, store: ArtifactStore, digests: Mapping[str, str] | None = None) -> Artifacts:
    """Load a run after checking every file against its recorded digest.

    ``digests`` (from the registry's database) take precedence over the ones
    in ``run.json``, which sits beside the files it vouches for.
    """
    record = read_record(run_id, store)
    digests = record["files"] if digests is None else digests
    refuse_pickled(digests, f"run {run_id}")
    files = read_verified(run_id, store, digests)
    args = json.loads(files["args.json"])
    pipeline = load_pipeline(files[MODEL_FILE], args, f"run {run_id}: {MODEL_FILE}")
    return Artifacts(
        run_id=run_id,
        pipeline=pipeline,
        labels=json.loads(files["labels.json"]),
        threshold=float(json.loads(files["threshold.json"])),
        args=args,
        performance=json.loads(files["performance.json"]),
        record=record,
        predictor=predictor_for(pipeline),
    )

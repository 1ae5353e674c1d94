"""A version as executors receive it, and the one pure function every engine calls on a batch.

Executors never reach the registry's database: the driver resolves the version once and
hands them a :class:`VersionPackage` (the files' bytes and the digests the registry
recorded). :func:`load_package` checks every file against those digests before anything
in it is read, through the store's own :func:`~coe_template.artifacts.runs.load_artifacts`, so a
file changed in transit is refused on the executor, naming it.

:func:`predict_table` tags a batch with :func:`coe_template.model.predict.tag`, the function
``POST /predictions`` answers with: the same tag and the same float64 probabilities, bit
for bit. Every input row gives exactly one output row, with a ``status``:

- ``ok``: predicted;
- ``duplicate id``: the id appears more than once in the input (every occurrence is marked); predicted;
- ``no id``: the id is null or empty; predicted;
- ``no text``: the text is null, empty or whitespace only (the API refuses such a text); not predicted;
- ``not utf-8``: the id's or the text's bytes are not UTF-8; not predicted.

Rows not predicted have a null tag and null probabilities.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from coe_template.artifacts.runs import RECORD_FILE, Artifacts, load_artifacts
from coe_template.artifacts.stores import ArtifactError, ArtifactStore
from coe_template.batch.items import blank
from coe_template.model.predict import tag
from coe_template.registry import Registry

OK, DUPLICATE_ID, NO_ID, NO_TEXT, NOT_UTF8 = "ok", "duplicate id", "no id", "no text", "not utf-8"
#: Every status a row can have, in the order of the module's docstring.
STATUSES = (OK, DUPLICATE_ID, NO_ID, NO_TEXT, NOT_UTF8)
#: The statuses whose rows carry a prediction.
PREDICTED = frozenset({OK, DUPLICATE_ID, NO_ID})
#: The prefix of each tag's probability column (``probability_computer-vision``...).
PROBABILITY = "probability_"
#: The key of the output's Parquet key-value metadata holding the job's manifest.
METADATA_KEY = "coe_template.batch"


@dataclass(frozen=True)
class VersionPackage:
    """One version's files as bytes with the digests the registry recorded: all an executor gets."""

    model: str
    version: int
    run_id: str
    digests: Mapping[str, str]
    files: Mapping[str, bytes]

    @classmethod
    def export(cls, registry: Registry, name: str, number: int) -> VersionPackage:
        """A ready version's files, each verified on the way out of the store."""
        manifest, files = registry.export_version(name, number)
        return cls(name, number, manifest["run_id"], dict(manifest["artifacts"]), files)

    def fingerprint(self) -> str:
        """The sha256 of the bytes actually held (not the recorded digests): a cache key a change cannot share."""
        digest = hashlib.sha256(f"{self.model}\0{self.version}\0{self.run_id}".encode())
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        for name, expected in sorted(self.digests.items()):
            digest.update(f"{name}\0{expected}".encode())
        return digest.hexdigest()


class _Received(ArtifactStore):
    """A package's files as a read-only store, so loading is the store's own, verification included."""

    kind = "received"

    def __init__(self, run_id: str, files: Mapping[str, bytes]) -> None:
        self.run_id, self.files = run_id, files

    def get(self, run_id: str, name: str) -> bytes | None:
        return self.files.get(name) if run_id == self.run_id else None

    def exists(self, run_id: str) -> bool:
        return run_id == self.run_id and RECORD_FILE in self.files

    def put(self, run_id: str, files: Mapping[str, bytes], connection: Any = None) -> None:
        raise ArtifactError("a received version is read-only")

    def delete(self, run_id: str, connection: Any = None) -> None:
        raise ArtifactError("a received version is read-only")


@dataclass(frozen=True)
class LoadedVersion:
    """A version loaded on an executor, its files checked against the registry's digests."""

    model: str
    version: int
    artifacts: Artifacts


def load_package(package: VersionPackage) -> LoadedVersion:
    """Verify every file of ``package`` against its digests, then load it (:class:`ArtifactError` if one differs)."""
    received = _Received(package.run_id, package.files)
    return LoadedVersion(
        package.model, package.version, load_artifacts(package.run_id, received, package.digests)
    )


def output_schema(labels: Sequence[str], metadata: Mapping[str, Any] | None = None) -> pa.Schema:
    """The output's columns: id, status, tag, each tag's probability (in the model's order), model, version."""
    fields = [
        pa.field("id", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("tag", pa.string()),
        *(pa.field(f"{PROBABILITY}{label}", pa.float64()) for label in labels),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
    ]
    encoded = None if metadata is None else {METADATA_KEY: json.dumps(metadata, sort_keys=True)}
    return pa.schema(fields, metadata=encoded)


def _as_text(value: object, latin1: bool) -> tuple[str | None, bool]:
    """A cell as text, and whether its bytes were UTF-8.

    ``latin1``: the cell was read as ISO-8859-1 (every byte one character, so nothing is
    lost or replaced), and is re-encoded here to check its bytes are UTF-8.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, True
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), True  # an integer id column with nulls, read as floats
    if not isinstance(value, bytes | str):
        return str(value), True
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        return (text.encode("latin-1").decode("utf-8") if latin1 else text), True
    except UnicodeError:
        return None, False


def cells(batch: pa.Table | pa.RecordBatch, name: str) -> list[object]:
    """A column's cells, strings as their bytes: a string holding invalid UTF-8 (Arrow does not
    check) is then a row whose status says so, not an error that stops the job."""
    column = batch.column(name)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = column.cast(pa.large_binary())
    return list(column.to_pylist())


def ids_as_read(values: Iterable[object], latin1: bool = False) -> frozenset[str]:
    """Raw id cells as :func:`predict_table` reads them (nulls and empty ids left out)."""
    return frozenset(item_id for item_id, _ in (_as_text(v, latin1) for v in values) if item_id)


def predict_table(
    loaded: LoadedVersion,
    ids: Sequence[object],
    texts: Sequence[object],
    duplicated: Collection[str] = frozenset(),
    latin1: bool = False,
) -> pa.Table:
    """One row per input row, in order: id, status, tag, every tag's probability, model and version.

    ``duplicated``: the ids known (by the driver, over the whole input) to repeat.
    ``latin1``: the cells were read as ISO-8859-1 (CSV), to tell the rows whose bytes are not UTF-8.
    """
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    out_ids: list[str | None] = []
    statuses: list[str] = []
    usable: list[str] = []
    for raw_id, raw_text in zip(ids, texts, strict=True):
        item_id, id_utf8 = _as_text(raw_id, latin1)
        text, text_utf8 = _as_text(raw_text, latin1)
        out_ids.append(item_id)
        if not (id_utf8 and text_utf8):
            statuses.append(NOT_UTF8)
        elif text is None or blank(text):
            statuses.append(NO_TEXT)
        else:
            statuses.append(NO_ID if not item_id else DUPLICATE_ID if item_id in duplicated else OK)
            usable.append(text)
    artifacts = loaded.artifacts
    tags, probabilities = tag(usable, artifacts) if usable else ([], None)
    predicted = [status in PREDICTED for status in statuses]
    rows = len(statuses)
    columns: list[pa.Array] = [
        pa.array(out_ids, pa.string()),
        pa.array(statuses, pa.string()),
        _spread(tags, predicted, pa.string()),
    ]
    for j in range(len(artifacts.labels)):
        column: Any = [] if probabilities is None else probabilities[:, j]
        columns.append(_spread(column, predicted, pa.float64()))
    columns += [
        pa.array([loaded.model] * rows, pa.string()),
        pa.array([loaded.version] * rows, pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=output_schema(artifacts.labels))


def _spread(values: Any, predicted: Sequence[bool], kind: pa.DataType) -> pa.Array:
    """The predicted rows' values in their places, null elsewhere."""
    if all(predicted):
        return pa.array(values, kind)
    it = iter(values.tolist() if hasattr(values, "tolist") else values)
    return pa.array([next(it) if p else None for p in predicted], kind)

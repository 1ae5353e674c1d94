"""The driver of a batch job on an engine: resolve the version once, check the input, write the manifest.

The version (``--version N``, or an alias) is resolved when the job starts and exported with
its digests into a :class:`~coe_template.engines.table.VersionPackage`: a promotion during
the job changes nothing in it. The input is checked before any work (its format, its id and
text columns, and which ids repeat, read from the id column alone). Once the engine has
written the output, the rows are counted back from it: a count that differs from the
input's is an error, never a silent loss. The job's manifest (model, version, run id,
digests, rows, each status's count, start and end) goes beside the data as ``_manifest.json``
and, for Parquet, as the dataset's key-value metadata in ``_common_metadata``; readers
(Spark, pyarrow, Ray) skip files whose names start with ``_``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from coe_template.engines.table import VersionPackage, ids_as_read, output_schema
from coe_template.errors import CoeError, InvalidInput
from coe_template.registry import Registry

FORMATS = ("parquet", "csv", "json")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}
MANIFEST = "_manifest.json"
COMMON_METADATA = "_common_metadata"


class JobInputError(InvalidInput):
    """The input or output of a batch job is unusable: said before any work starts."""


class RowsLost(CoeError):
    """The engine wrote another number of rows than the input holds (never expected: said, not hidden)."""


def format_of(path: str, given: str | None) -> str:
    """``given``, else the format the path's extension names (``.parquet``, ``.csv``, ``.json``/``.jsonl``)."""
    if given is not None:
        return given
    found = _SUFFIXES.get(PurePosixPath(path.rstrip("/")).suffix.lower())
    if found is None:
        raise JobInputError(
            f"{path}: cannot tell its format from its extension; say --format {'|'.join(FORMATS)}"
        )
    return found


def location(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a URI pyarrow reads (``s3://``, ``gs://``, ``hdfs://``...) or a local path."""
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def engine_path(path: str) -> str:
    """How the engines are given a path: URIs as they are, local paths made absolute."""
    return path if "://" in path else str(Path(path).resolve())


def csv_options() -> tuple[pacsv.ReadOptions, pacsv.ParseOptions]:
    """CSV read as ISO-8859-1 (no byte lost or replaced, each row's UTF-8 checked later), quoted line breaks kept."""
    return pacsv.ReadOptions(encoding="latin-1"), pacsv.ParseOptions(newlines_in_values=True)


@dataclass(frozen=True)
class Source:
    path: str
    format: str
    text_column: str
    id_column: str

    @property
    def latin1(self) -> bool:
        return self.format == "csv"

    def dataset(self) -> pads.Dataset:
        fs, path = location(self.path)
        if self.format == "csv":
            read_options, parse_options = csv_options()
            kind: Any = pads.CsvFileFormat(read_options=read_options, parse_options=parse_options)
        else:
            kind = self.format
        try:
            return pads.dataset(path, format=kind, filesystem=fs)
        except (OSError, pa.ArrowInvalid) as exc:
            raise JobInputError(f"{self.path}: cannot be read as {self.format} ({exc})") from None

    def ids(self) -> tuple[int, frozenset[str]]:
        """The input's row count and the ids that repeat; :class:`JobInputError` if a column is missing."""
        dataset = self.dataset()
        missing = [c for c in (self.text_column, self.id_column) if c not in dataset.schema.names]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise JobInputError(
                f"{self.path} has no column {names} (its columns: {', '.join(dataset.schema.names)}); "
                "name them with --text-column and --id-column"
            )
        try:
            column = dataset.to_table(columns=[self.id_column]).column(self.id_column)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                column = column.cast(pa.large_binary())  # as the engines read it: invalid UTF-8 is a status
        except (OSError, pa.ArrowInvalid) as exc:
            raise JobInputError(f"{self.path}: cannot be read as {self.format} ({exc})") from None
        counts = pc.value_counts(column)
        repeated = [
            v.as_py()
            for v, n in zip(counts.field("values"), counts.field("counts"), strict=True)
            if n.as_py() > 1
        ]
        return len(column), ids_as_read(repeated, self.latin1)


@dataclass(frozen=True)
class Plan:
    """What every engine is given: a fixed version and a checked input; nothing that reaches the registry."""

    package: VersionPackage
    alias: str | None
    source: Source
    output: str
    output_format: str
    rows: int
    duplicated: frozenset[str]
    started_at: str

    @property
    def labels(self) -> list[str]:
        return list(json.loads(self.package.files["labels.json"]))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def plan(
    registry: Registry,
    name: str,
    *,
    version: int | None,
    alias: str,
    source: Source,
    output: str,
    output_format: str,
) -> Plan:
    """Resolve the version once, export it verified, and check the input and output before any work."""
    started_at = _now()
    fs, out = location(output)
    if fs.get_file_info(out).type != pafs.FileType.NotFound:
        raise JobInputError(f"{output} exists already: name a new output")
    number = version if version is not None else registry.get_alias(name, alias)
    package = VersionPackage.export(registry, name, number)
    rows, duplicated = source.ids()
    return Plan(
        package,
        None if version is not None else alias,
        source,
        output,
        output_format,
        rows,
        duplicated,
        started_at,
    )


def finish(plan: Plan, engine: str) -> dict[str, Any]:
    """Count the output's rows and statuses back, then write the manifest beside them; the manifest."""
    fs, out = location(plan.output)
    written = pads.dataset(out, format=plan.output_format, filesystem=fs).to_table(columns=["status"])
    counts = pc.value_counts(written.column("status"))
    statuses = {
        v.as_py(): n.as_py() for v, n in zip(counts.field("values"), counts.field("counts"), strict=True)
    }
    package = plan.package
    manifest = {
        "model": package.model,
        "version": package.version,
        "alias": plan.alias,
        "run_id": package.run_id,
        "digests": dict(package.digests),
        "engine": engine,
        "input": plan.source.path,
        "output": plan.output,
        "format": plan.output_format,
        "rows": written.num_rows,
        "statuses": dict(sorted(statuses.items())),
        "started_at": plan.started_at,
        "finished_at": _now(),
    }
    with fs.open_output_stream(f"{out}/{MANIFEST}") as stream:
        stream.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    if plan.output_format == "parquet":
        pq.write_metadata(output_schema(plan.labels, manifest), f"{out}/{COMMON_METADATA}", filesystem=fs)
    if written.num_rows != plan.rows:
        raise RowsLost(
            f"{plan.output}: {written.num_rows} rows written for {plan.rows} read (see {MANIFEST})"
        )
    return manifest

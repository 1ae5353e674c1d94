"""One file that carries a ready version from one registry to another, with its digests.

The file is a gzipped tar of ``manifest.json`` (the version's arguments, dataset,
performance, threshold, run id and every file's sha256) and ``files/<name>`` for
each file of the run. It comes from outside, so reading it trusts nothing: only
the expected member names, regular files, bounded sizes (every tar header too,
PAX and GNU long names included, before it is read), every digest checked, and
nothing is ever extracted to disk or unpickled. The digests are the archive's
own: they prove the files arrived intact, not who made them. So the model file
must also hold nothing but the types this project trains (see
:mod:`coe_template.model.model_file`), built from the run's own arguments, or nothing is
imported. What a version records (its arguments, performance, threshold and
dataset) is read from the run's own files, whose digests are checked; the
manifest's copies must agree with them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import secrets
import tarfile
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coe_template.artifacts.runs import MODEL_FILE, PICKLED_MODEL_FILE, RECORD_FILE, RUN_FILES
from coe_template.artifacts.stores import RUN_ID
from coe_template.errors import InvalidInput
from coe_template.model.args import ArgsError, parse_args
from coe_template.model.model_file import UntrustedModelFile
from coe_template.model.model_file import loads as load_pipeline
from coe_template.shapes import check_description, check_model_name, performance_problem, strict_json

FORMAT = "coe-template-version/1"
MANIFEST = "manifest.json"
FILES = "files/"
#: Exactly the files of a run: nothing else becomes part of a version every server loads.
EXPECTED = (*RUN_FILES, RECORD_FILE)
#: The most bytes one member may have, checked before it is read: far above this project's
#: (a model of ~1.2 MB, JSON files of ~2 kB), far below what would exhaust a server's memory.
MAX_MODEL_BYTES = 256 << 20
MAX_JSON_BYTES = 1 << 20
#: The most bytes the reader takes from the archive at once: a tar header's own data (PAX extended
#: headers, GNU long names) is read whole by :mod:`tarfile`, so it is bounded here, before it is read.
#: Members are read in chunks of this size. This project's exports have no such header at all.
MAX_READ_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Where each recorded value comes from: a run's own file, whose digest is checked.
SOURCES = {
    "args": "args.json",
    "performance": "performance.json",
    "threshold": "threshold.json",
    "dataset": RECORD_FILE,
}


class NotAnExport(InvalidInput):
    """Not an intact export: malformed, with unexpected members, or files not matching their digests."""


def write_export(path: Path, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Write the export to ``path`` via a temporary beside it: a crash leaves no half file under that name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    members = {
        MANIFEST: json.dumps({"format": FORMAT, **manifest}, indent=2, sort_keys=True).encode("utf-8"),
        **{FILES + name: data for name, data in sorted(files.items())},
    }
    try:
        with tarfile.open(tmp, "w:gz") as archive:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                archive.addfile(info, io.BytesIO(data))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_export(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every file of an export, each file checked against the manifest's digest.

    :class:`NotAnExport` (nothing recorded anywhere yet) for anything else.
    """
    where = str(path)
    try:
        members, digests = _members(Path(path), where)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise NotAnExport(f"{where} is not a model export (a gzipped tar): {exc}") from None
    except gzip.BadGzipFile:
        raise NotAnExport(f"{where} is not a model export (a gzipped tar): not a gzip file") from None
    except OSError as exc:  # a gzip error is an OSError too, with no errno
        if exc.errno is not None:
            raise NotAnExport(f"{where} cannot be read: {exc.strerror}") from None
        raise NotAnExport(f"{where} is not a model export (a gzipped tar): {exc}") from None
    if MANIFEST not in members:
        raise NotAnExport(f"{where} has no {MANIFEST}: not a model export")
    try:
        manifest = strict_json(members.pop(MANIFEST))
    except ValueError as exc:
        raise NotAnExport(f"{where}: {MANIFEST} is not JSON ({exc})") from None
    _check_manifest(manifest, where)
    files = {name.removeprefix(FILES): data for name, data in members.items()}
    expected = set(manifest["artifacts"]) | {RECORD_FILE}
    if set(files) != expected:
        raise NotAnExport(
            f"{where}: its files ({', '.join(sorted(files)) or 'none'}) are not the ones "
            f"its manifest lists ({', '.join(sorted(expected))})"
        )
    for name, digest in manifest["artifacts"].items():
        if digests[FILES + name] != digest:
            raise NotAnExport(
                f"{where}: {name} does not match its sha256 in the manifest "
                f"(expected {digest}, found {digests[FILES + name]}); nothing imported"
            )
    _check_record(files[RECORD_FILE], manifest, where)
    check_values(manifest, files, where)
    return manifest, files


def run_values(files: Mapping[str, bytes], where: str) -> dict[str, Any]:
    """What a version records, read from its run's own files (``SOURCES``), each value checked, and
    the model file read as every server would (building only trusted types, see :mod:`coe_template.model.model_file`).

    The caller has checked the files' digests; :class:`NotAnExport` for a value of the wrong shape
    or a model file that is not one of this project's.
    """

    def wrong(name: str, what: str) -> NotAnExport:
        return NotAnExport(f"{where}: {name} {what}; nothing imported")

    parsed: dict[str, Any] = {}
    for name in set(SOURCES.values()):
        try:
            parsed[name] = strict_json(files[name])
        except (KeyError, ValueError) as exc:
            raise wrong(name, f"is missing or not JSON ({exc})") from None
    raw_args = parsed["args.json"]
    if not isinstance(raw_args, dict):
        raise wrong("args.json", "is not a JSON object of training arguments")
    try:
        args = parse_args(raw_args).to_dict()
    except ArgsError as exc:
        raise wrong("args.json", f"holds {exc}") from None
    problem = performance_problem(parsed["performance.json"])
    if problem is not None:
        raise wrong("performance.json", f"is not a performance ({problem})")
    threshold = parsed["threshold.json"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise wrong("threshold.json", "is not a threshold (a number from 0 to 1)")
    dataset = parsed[RECORD_FILE].get("dataset") if isinstance(parsed[RECORD_FILE], dict) else None
    if dataset is not None and not (
        isinstance(dataset, dict)
        and set(dataset) == {"rows", "sha256"}
        and isinstance(dataset["rows"], int)
        and not isinstance(dataset["rows"], bool)
        and dataset["rows"] >= 0
        and isinstance(dataset["sha256"], str)
        and _SHA256.fullmatch(dataset["sha256"])
    ):
        raise wrong(RECORD_FILE, "names no dataset (its row count and sha256)")
    try:
        load_pipeline(files[MODEL_FILE], args, f"{where}: {MODEL_FILE}")
    except UntrustedModelFile as exc:
        raise NotAnExport(f"{exc}; nothing imported") from None
    return {
        "args": args,
        "performance": parsed["performance.json"],
        "threshold": threshold,
        "dataset": dataset,
    }


def check_values(manifest: Mapping[str, Any], files: Mapping[str, bytes], where: str) -> dict[str, Any]:
    """The run's own values (see :func:`run_values`), refused unless the manifest's copies are the same."""
    values = run_values(files, where)
    for key, value in values.items():
        if manifest.get(key) != value:
            raise NotAnExport(
                f"{where}: the manifest's {key} is not the one in {SOURCES[key]}; nothing imported"
            )
    return values


def max_bytes(name: str) -> int:
    """The most bytes a member (``manifest.json`` or a run's file) may have."""
    return MAX_MODEL_BYTES if name == FILES + MODEL_FILE else MAX_JSON_BYTES


def _members(path: Path, where: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every member's bytes and sha256, by name; only regular files with the expected names, each
    within its bound (checked from its header, before reading), never written to disk."""
    found: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    allowed = {MANIFEST, *(FILES + name for name in EXPECTED)}
    with (
        gzip.open(path, "rb") as unzipped,
        tarfile.open(fileobj=_Bounded(unzipped, where), mode="r:") as archive,
    ):
        for member in archive:
            name = member.name
            if name == FILES + PICKLED_MODEL_FILE:
                raise NotAnExport(
                    f"{where}: holds {PICKLED_MODEL_FILE}, a pickle (it can run code when read), which this "
                    f"release never loads; export the version from a registry where it was trained again "
                    f"(its model is then {MODEL_FILE}); nothing imported"
                )
            if name not in allowed:
                raise NotAnExport(
                    f"{where}: unexpected member {name!r} (an export holds only {MANIFEST} "
                    f"and {FILES}<{'|'.join(EXPECTED)}>); nothing imported"
                )
            if not member.isfile():
                raise NotAnExport(f"{where}: member {name!r} is not a regular file; nothing imported")
            if name in found:
                raise NotAnExport(f"{where}: member {name!r} appears twice; nothing imported")
            if member.size > max_bytes(name):
                raise NotAnExport(
                    f"{where}: member {name!r} has {member.size} bytes, more than the "
                    f"{max_bytes(name)} it may have; nothing imported"
                )
            reader = archive.extractfile(member)
            assert reader is not None  # a regular file
            digest, chunks, size = hashlib.sha256(), [], 0
            while size <= member.size and (chunk := reader.read(min(MAX_READ_BYTES, member.size + 1 - size))):
                digest.update(chunk)
                chunks.append(chunk)
                size += len(chunk)
            if size != member.size:
                raise NotAnExport(f"{where}: member {name!r} is truncated; nothing imported")
            found[name], digests[name] = b"".join(chunks), digest.hexdigest()
    return found, digests


class _Bounded(io.RawIOBase):
    """The uncompressed archive, refusing any single read larger than :data:`MAX_READ_BYTES`.

    :mod:`tarfile` reads a PAX extended header or a GNU long name whole, in one read of the
    size its header declares (``_proc_pax``), before any member is seen: a header declaring
    768 MiB took the reader to 2.5 GB. Refused here, before a byte of it is read.
    """

    def __init__(self, raw: gzip.GzipFile, where: str) -> None:
        super().__init__()
        self.raw, self.where = raw, where

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_READ_BYTES:
            raise NotAnExport(
                f"{self.where}: a tar header declares {size} bytes of its own, more than the "
                f"{MAX_READ_BYTES} an export's header may have; nothing imported"
            )
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def _check_manifest(manifest: Any, where: str) -> None:
    def wrong(what: str) -> NotAnExport:
        return NotAnExport(f"{where}: malformed {MANIFEST}: {what}; nothing imported")

    if not isinstance(manifest, dict):
        raise wrong("not a JSON object")
    if manifest.get("format") != FORMAT:
        raise wrong(f"format is {manifest.get('format')!r}, this code reads {FORMAT!r}")
    kinds: dict[str, type | tuple[type, ...]] = {
        "model": str,
        "version": int,
        "run_id": str,
        "args": dict,
        "performance": dict,
        "artifacts": dict,
        "threshold": (int, float),
        "dataset": (dict, type(None)),
    }
    for key, kind in kinds.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise wrong(f"{key!r} is missing or not a {getattr(kind, '__name__', 'number or null')}")
    if manifest["version"] < 1:
        raise wrong(f"version {manifest['version']} is not a version number (1 or more)")
    if not RUN_ID.fullmatch(manifest["run_id"]):
        raise wrong(f"{manifest['run_id']!r} is not a run id")
    try:
        check_model_name(manifest["model"])
        check_description(manifest.get("description", ""))
    except InvalidInput as exc:
        raise wrong(str(exc)) from None
    artifacts = manifest["artifacts"]
    bad = [
        n
        for n, d in artifacts.items()
        if n not in RUN_FILES or not (isinstance(d, str) and _SHA256.fullmatch(d))
    ]
    if bad:
        raise wrong(
            f"artifacts lists {', '.join(map(repr, sorted(bad)))}, not a run's file "
            f"({', '.join(RUN_FILES)}) with a sha256"
        )
    missing = [name for name in RUN_FILES if name not in artifacts]
    if missing:
        raise wrong(f"no digest for {', '.join(missing)}")


def _check_record(data: bytes, manifest: Mapping[str, Any], where: str) -> None:
    """The run's own record must name the same run and the same digests (it is written beside the files)."""
    try:
        record = strict_json(data)
    except ValueError as exc:
        raise NotAnExport(f"{where}: {RECORD_FILE} is not JSON ({exc}); nothing imported") from None
    if (
        not isinstance(record, dict)
        or record.get("run_id") != manifest["run_id"]
        or record.get("files") != manifest["artifacts"]
    ):
        raise NotAnExport(
            f"{where}: {RECORD_FILE} does not name the manifest's run and digests; nothing imported"
        )

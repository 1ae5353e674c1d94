"""One file that carries a ready version from one registry to another, with its digests.

The file is a gzipped tar of ``manifest.json`` (the version's arguments, dataset,
performance, threshold, run id and every file's sha256) and ``files/<name>`` for
each file of the run. It comes from outside, so reading it trusts nothing: only
the expected member names, regular files, bounded sizes, every digest checked,
and nothing is ever extracted to disk or unpickled.
"""

from __future__ import annotations

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

from coe_template.artifacts import FILE_NAME, RUN_ID
from coe_template.errors import InvalidInput
from coe_template.store import RECORD_FILE, RUN_FILES, sha256

FORMAT = "coe-template-version/1"
MANIFEST = "manifest.json"
FILES = "files/"
#: The most bytes an export may unpack to: far above a run of this project (a few MB), far below a bomb.
MAX_BYTES = 1 << 30
#: Manifest, the run's record, and room for files added to runs later.
MAX_MEMBERS = 32
_SHA256 = re.compile(r"[0-9a-f]{64}")


class NotAnExport(InvalidInput):
    """Not an intact export: malformed, with unexpected members, or files not matching their digests."""


def write_export(path: Path, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Write the export to ``path`` via a temporary beside it: a crash leaves no half file under that name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    members = {MANIFEST: json.dumps({"format": FORMAT, **manifest}, indent=2, sort_keys=True).encode("utf-8"),
               **{FILES + name: data for name, data in sorted(files.items())}}
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
        members = _members(Path(path), where)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise NotAnExport(f"{where} is not a model export (a gzipped tar): {exc}") from None
    except OSError as exc:  # a gzip error is an OSError too, with no errno
        if exc.errno is not None:
            raise NotAnExport(f"{where} cannot be read: {exc.strerror}") from None
        raise NotAnExport(f"{where} is not a model export (a gzipped tar): {exc}") from None
    if MANIFEST not in members:
        raise NotAnExport(f"{where} has no {MANIFEST}: not a model export")
    try:
        manifest = json.loads(members.pop(MANIFEST))
    except ValueError as exc:
        raise NotAnExport(f"{where}: {MANIFEST} is not JSON ({exc})") from None
    _check_manifest(manifest, where)
    files = {name.removeprefix(FILES): data for name, data in members.items()}
    expected = set(manifest["artifacts"]) | {RECORD_FILE}
    if set(files) != expected:
        raise NotAnExport(f"{where}: its files ({', '.join(sorted(files)) or 'none'}) are not the ones "
                          f"its manifest lists ({', '.join(sorted(expected))})")
    for name, digest in manifest["artifacts"].items():
        if sha256(files[name]) != digest:
            raise NotAnExport(f"{where}: {name} does not match its sha256 in the manifest "
                              f"(expected {digest}, found {sha256(files[name])}); nothing imported")
    _check_record(files[RECORD_FILE], manifest, where)
    return manifest, files


def _members(path: Path, where: str) -> dict[str, bytes]:
    """Every member's bytes, by name; only regular files with the expected names, never written to disk."""
    found: dict[str, bytes] = {}
    total = 0
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            name = member.name
            a_file = name.startswith(FILES) and FILE_NAME.fullmatch(name.removeprefix(FILES))
            if name != MANIFEST and not a_file:
                raise NotAnExport(f"{where}: unexpected member {name!r} (an export holds only {MANIFEST} "
                                  f"and {FILES}<file name>); nothing imported")
            if not member.isfile():
                raise NotAnExport(f"{where}: member {name!r} is not a regular file; nothing imported")
            if name in found:
                raise NotAnExport(f"{where}: member {name!r} appears twice; nothing imported")
            if len(found) >= MAX_MEMBERS:
                raise NotAnExport(f"{where}: more than {MAX_MEMBERS} members; nothing imported")
            total += member.size
            if total > MAX_BYTES:
                raise NotAnExport(f"{where}: larger than {MAX_BYTES} bytes unpacked; nothing imported")
            reader = archive.extractfile(member)
            assert reader is not None  # a regular file
            data = reader.read(member.size + 1)
            if len(data) != member.size:
                raise NotAnExport(f"{where}: member {name!r} is truncated; nothing imported")
            found[name] = data
    return found


def _check_manifest(manifest: Any, where: str) -> None:
    def wrong(what: str) -> NotAnExport:
        return NotAnExport(f"{where}: malformed {MANIFEST}: {what}; nothing imported")

    if not isinstance(manifest, dict):
        raise wrong("not a JSON object")
    if manifest.get("format") != FORMAT:
        raise wrong(f"format is {manifest.get('format')!r}, this code reads {FORMAT!r}")
    kinds = {"model": str, "version": int, "run_id": str, "args": dict, "performance": dict,
             "artifacts": dict, "threshold": (int, float), "dataset": (dict, type(None))}
    for key, kind in kinds.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise wrong(f"{key!r} is missing or not a {getattr(kind, '__name__', 'number or null')}")
    if not RUN_ID.fullmatch(manifest["run_id"]):
        raise wrong(f"{manifest['run_id']!r} is not a run id")
    artifacts = manifest["artifacts"]
    bad = [n for n, d in artifacts.items() if not FILE_NAME.fullmatch(n) or n == RECORD_FILE
           or not (isinstance(d, str) and _SHA256.fullmatch(d))]
    if bad:
        raise wrong(f"artifacts lists {', '.join(map(repr, sorted(bad)))}, not a file name with a sha256")
    missing = [name for name in RUN_FILES if name not in artifacts]
    if missing:
        raise wrong(f"no digest for {', '.join(missing)}")


def _check_record(data: bytes, manifest: Mapping[str, Any], where: str) -> None:
    """The run's own record must name the same run and the same digests (it is written beside the files)."""
    try:
        record = json.loads(data)
    except ValueError as exc:
        raise NotAnExport(f"{where}: {RECORD_FILE} is not JSON ({exc}); nothing imported") from None
    if not isinstance(record, dict) or record.get("run_id") != manifest["run_id"] \
            or record.get("files") != manifest["artifacts"]:
        raise NotAnExport(f"{where}: {RECORD_FILE} does not name the manifest's run and digests; "
                          "nothing imported")

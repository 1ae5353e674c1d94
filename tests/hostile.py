"""Model files an attacker would write: each runs code (writes a marker file) if anything builds it.

Each maker is checked to be live by :func:`assert_live` (the payload really runs when a loader
trusts what the file names), so a refusal in a test is never a refusal of a harmless file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline
from sqlalchemy import delete, insert, update

from coe_template.artifacts.runs import MODEL_FILE, RECORD_FILE, runs_dir, sha256
from coe_template.artifacts.stores import DATABASE
from coe_template.model.model_file import SCHEMA
from coe_template.model.model_file import dumps as dump_pipeline
from coe_template.registry import Registry
from coe_template.registry.schema import ArtifactBlob, ModelVersion
from tests.conftest import MODEL


def _write(marker: Path) -> str:
    """Python that writes ``marker``."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def _schema(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read(SCHEMA))


def _with_schema(data: bytes, schema: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = json.dumps(schema).encode() if info.filename == SCHEMA else source.read(info)
            target.writestr(info.filename, body)
    return out.getvalue()


def _string(value: str) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
    }


def call_node(module: str, name: str, argument: str) -> dict[str, Any]:
    """A node skops builds by calling ``module.name(argument)`` (``ConstructorFromReduceNode``)."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_string(argument)],
        },
    }


def with_format_node(pipeline: Pipeline, node: dict[str, Any]) -> bytes:
    """A real model file whose ``format`` entry is ``node``: a payload beside an intact model."""
    data = dump_pipeline(pipeline)
    schema = _schema(data)
    schema["content"]["format"] = node
    return _with_schema(data, schema)


def exec_file(pipeline: Pipeline, marker: Path) -> bytes:
    """Builds as ``builtins.exec("open(marker, 'w')...")``."""
    return with_format_node(pipeline, call_node("builtins", "exec", _write(marker)))


def system_file(pipeline: Pipeline, marker: Path) -> bytes:
    """Builds as ``os.system("touch marker")``."""
    return with_format_node(pipeline, call_node("os", "system", f"touch {marker}"))


def analyzer_file(pipeline: Pipeline) -> bytes:
    """A model whose vectorizer's analyzer is ``os.system``: every text predicted is run as a shell command."""
    forged = copy.deepcopy(pipeline)
    forged[0].analyzer = os.system
    return dump_pipeline(forged)


def retyped_file(pipeline: Pipeline, old: str, new: str) -> bytes:
    """A real model file whose objects of class ``old`` say they are ``new`` (same module)."""
    data = dump_pipeline(pipeline)
    text = json.dumps(_schema(data)).replace(f'"__class__": "{old}"', f'"__class__": "{new}"')
    return _with_schema(data, json.loads(text))


def pickle_file(marker: Path) -> bytes:
    """A pickle that writes ``marker`` when loaded (as ``model.joblib`` was read before)."""

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (exec, (_write(marker),))

    return pickle.dumps(Payload())


def assert_live(data: bytes, marker: Path, texts: tuple[str, ...] = ()) -> None:
    """The file really runs its payload when a loader trusts every type it names (then the marker is removed)."""
    with contextlib.suppress(Exception):  # the payload runs before whatever fails after it
        loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        pipeline = loaded["pipeline"]
        pipeline[0].vocabulary_ = {term: column for column, term in enumerate(loaded["vocabulary"])}
        pipeline.predict_proba(list(texts))
    assert marker.exists(), "the hostile file is not live: a refusal of it would prove nothing"
    marker.unlink()


def forge_version(registry: Registry, number: int, data: bytes, name: str = MODEL_FILE) -> str:
    """Make version ``number``'s model ``data`` (stored as ``name``), every digest recorded for it:
    what someone who can write the artifact store and the registry's database could do. Its run id."""
    version = registry.get_version(MODEL, number)
    run_id, digests = version.run_id, dict(version.artifacts)
    assert run_id is not None
    del digests[MODEL_FILE]
    digests[name] = sha256(data)
    blobs, versions = ArtifactBlob.__table__, ModelVersion.__table__
    with registry.engine.begin() as connection:
        if registry.artifacts.kind == DATABASE:
            connection.execute(delete(blobs).where(blobs.c.run_id == run_id, blobs.c.name == MODEL_FILE))
            connection.execute(
                insert(blobs).values(run_id=run_id, name=name, sha256=digests[name], data=data)
            )
        else:
            run = runs_dir(registry.store) / run_id
            (run / MODEL_FILE).unlink()
            (run / name).write_bytes(data)
            record = json.loads((run / RECORD_FILE).read_text(encoding="utf-8"))
            record["files"] = digests
            (run / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
        connection.execute(update(versions).where(versions.c.run_id == run_id).values(artifacts=digests))
    return run_id

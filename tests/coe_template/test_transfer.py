"""``coe-template models export/import``: a ready version moves between registries with its digests, or not at all."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from coe_template.artifacts import DATABASE, DIRECTORY
from coe_template.cli import main
from coe_template.data import clean_text
from coe_template.registry import Registry
from coe_template.store import MODEL_FILE, RECORD_FILE, RUN_FILES, sha256
from tests.coe_template.test_cli import clean
from tests.conftest import MODEL, seeded_registry
from tests.databases import postgres_schema

TEXTS = [clean_text(t) for t in ["Object detection on drone video", "A transformer for legal text"]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    clean(monkeypatch)


@pytest.fixture
def source(database_url, tmp_path, trained_model) -> Iterator[Registry]:
    """Where the version was trained: two ready versions, artifacts in the database."""
    registry = seeded_registry(database_url, tmp_path / "source", trained_model, versions=2, artifacts=DATABASE)
    yield registry
    registry.engine.dispose()


@pytest.fixture
def target_url(database_url, tmp_path) -> Iterator[str]:
    """Another registry's database, of the same kind as the source's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'target.db'}"
    else:
        with postgres_schema(os.environ["TEST_DATABASE_URL"], prefix="target") as url:
            yield url


@pytest.fixture
def target(target_url, tmp_path, trained_model) -> Iterator[Registry]:
    """The registry the version moves to: one version of its own already, artifacts in a directory."""
    registry = seeded_registry(target_url, tmp_path / "target", trained_model)
    yield registry
    registry.engine.dispose()


def cli(registry: Registry, *args: str):
    """``coe-template`` run against ``registry``'s database, store and artifact store."""
    env = {"DATABASE_URL": registry.engine.url.render_as_string(hide_password=False),
           "COE_ARTIFACT_STORE": registry.artifacts.kind}
    return CliRunner().invoke(main, ["--store", str(registry.store), *args], env=env)


@pytest.fixture
def exported(source, tmp_path) -> Path:
    out = tmp_path / "v2.tar.gz"
    result = cli(source, "models", "export", MODEL, "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    run_id = source.get_version(MODEL, 2).run_id
    size = sum(len(source.artifacts.get(run_id, n)) for n in (*RUN_FILES, RECORD_FILE))
    assert result.output == f"{MODEL} version 2 (run {run_id}, 6 files, {size} bytes) exported to {out}\n"
    return out


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive}


def rewrite(path: Path, changed: dict[str, bytes], *, extra: list[tarfile.TarInfo] = ()) -> Path:
    """A copy of an export with some members' bytes replaced (or added), and ``extra`` raw members."""
    out = path.with_name("changed.tar.gz")
    with tarfile.open(out, "w:gz") as archive:
        for name, data in {**members(path), **changed}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return out


def test_a_version_moves_with_its_digests_and_predicts_the_same(source, target, exported, target_url):
    assert set(members(exported)) == {"manifest.json", *(f"files/{n}" for n in (*RUN_FILES, RECORD_FILE))}
    result = cli(target, "models", "import", str(exported))
    assert result.exit_code == 0, result.output
    original = source.get_version(MODEL, 2)
    assert result.output == (f"{MODEL}: imported {MODEL} version 2 (run {original.run_id}) as version 2, ready; "
                             f"promote it with `coe-template models promote {MODEL} 2`\n")
    imported = target.get_version(MODEL, 2)  # numbered by the target: its next version
    assert imported.status == "ready"
    for key in ("artifacts", "run_id", "args", "dataset", "performance"):
        assert getattr(imported, key) == getattr(original, key), key
    np.testing.assert_array_equal(target.load(MODEL, 2).pipeline.predict_proba(TEXTS),
                                  source.load(MODEL, 2).pipeline.predict_proba(TEXTS))
    assert target.artifacts.kind == DIRECTORY  # from the database store to a directory, digests intact
    assert {n: sha256(p.read_bytes()) for n, p in
            ((n, target.store / "runs" / original.run_id / n) for n in RUN_FILES)} == original.artifacts

    again = cli(target, "models", "import", str(exported), "--model", MODEL)  # never overwrites
    assert again.exit_code == 1
    assert again.output == (f"Error: run {original.run_id} is already in this registry's artifact store "
                            "(imported before, or exported from here): nothing imported\n")
    assert [v.version for v in target.list_versions(MODEL)[0]] == [1, 2]


def test_import_into_a_model_of_another_name_creates_it(target, exported):
    result = cli(target, "models", "import", str(exported), "--model", "tagger-from-elsewhere")
    assert result.exit_code == 0, result.output
    assert target.get_version("tagger-from-elsewhere", 1).status == "ready"


def refused(target: Registry, path: Path, message: str) -> None:
    """The import exits 1 with ``message`` and records and writes nothing."""
    before = target.list_versions(MODEL)[0]
    runs_before = sorted(p.name for p in (target.store / "runs").iterdir())
    result = cli(target, "models", "import", str(path))
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    assert target.list_versions(MODEL)[0] == before
    assert sorted(p.name for p in (target.store / "runs").iterdir()) == runs_before


def test_a_file_whose_bytes_do_not_match_the_manifest_is_refused(target, exported):
    model = bytearray(members(exported)[f"files/{MODEL_FILE}"])
    model[len(model) // 2] ^= 0x01
    changed = rewrite(exported, {f"files/{MODEL_FILE}": bytes(model)})
    expected = json.loads(members(exported)["manifest.json"])["artifacts"][MODEL_FILE]
    refused(target, changed, f"{changed}: {MODEL_FILE} does not match its sha256 in the manifest "
                             f"(expected {expected}, found {sha256(bytes(model))}); nothing imported")


def test_a_manifest_that_vouches_for_changed_bytes_is_refused_by_the_run_record(target, exported):
    """Changing the model and its digest in the manifest is not enough: run.json names the digests too."""
    model = members(exported)[f"files/{MODEL_FILE}"] + b"\0"
    manifest = json.loads(members(exported)["manifest.json"])
    manifest["artifacts"][MODEL_FILE] = sha256(model)
    changed = rewrite(exported, {f"files/{MODEL_FILE}": model, "manifest.json": json.dumps(manifest).encode()})
    refused(target, changed, f"{changed}: {RECORD_FILE} does not name the manifest's run and digests; "
                             "nothing imported")


@pytest.mark.parametrize("name", ["../evil.json", "files/../../evil.json", "/tmp/evil.json", "files/sub/x.json",
                                  "./manifest.json"])
def test_a_member_outside_the_expected_names_is_refused(target, exported, name, tmp_path):
    info = tarfile.TarInfo(name)
    info.size = 1
    changed = rewrite(exported, {}, extra=[info])
    refused(target, changed, f"{changed}: unexpected member {name!r} (an export holds only manifest.json "
                             "and files/<file name>); nothing imported")
    assert not (tmp_path / "evil.json").exists() and not Path("/tmp/evil.json").exists()


def test_a_link_in_place_of_a_file_is_refused(target, exported):
    link = tarfile.TarInfo("files/labels.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    contents = members(exported)
    contents.pop("files/labels.json")
    plain = exported.with_name("without-labels.tar.gz")
    with tarfile.open(plain, "w:gz") as archive:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        archive.addfile(link)
    refused(target, plain, f"{plain}: member 'files/labels.json' is not a regular file; nothing imported")


@pytest.mark.parametrize(("manifest", "why"), [
    (b"[]", "malformed manifest.json: not a JSON object"),
    (b"{", "manifest.json is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ({"format": "something/9"}, "malformed manifest.json: format is 'something/9', this code reads "
                                "'coe-template-version/1'"),
    ({"artifacts": None}, "malformed manifest.json: 'artifacts' is missing or not a dict"),
    ({"run_id": "../../etc"}, "malformed manifest.json: '../../etc' is not a run id"),
    ({"artifacts": {"../x.json": "0" * 64}}, "malformed manifest.json: artifacts lists '../x.json', "
                                             "not a file name with a sha256"),
])
def test_a_malformed_manifest_is_refused(target, exported, manifest, why):
    if isinstance(manifest, dict):
        manifest = json.dumps({**json.loads(members(exported)["manifest.json"]), **manifest}).encode()
    changed = rewrite(exported, {"manifest.json": manifest})
    suffix = "" if "not JSON" in why else "; nothing imported"
    refused(target, changed, f"{changed}: {why}{suffix}")


def test_a_file_that_is_not_an_export_is_refused(target, tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(b"\x80\x04 a pickle, not an export")
    refused(target, path, f"{path} is not a model export (a gzipped tar): not a gzip file")

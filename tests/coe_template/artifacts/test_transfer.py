"""``coe-template models export/import``: a ready version moves between registries with its digests, or not at all."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from coe_template.artifacts.runs import MODEL_FILE, PICKLED_MODEL_FILE, RECORD_FILE, RUN_FILES, sha256
from coe_template.artifacts.stores import DATABASE, DIRECTORY
from coe_template.artifacts.transfer import NotAnExport, read_export
from coe_template.cli import main
from coe_template.model.data import clean_text
from coe_template.registry import Registry
from tests import hostile
from tests.coe_template.test_cli import clean
from tests.conftest import MODEL, seeded_copy

TEXTS = [clean_text(t) for t in ["Object detection on drone video", "A transformer for legal text"]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    clean(monkeypatch)


def kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


@pytest.fixture
def source(database_url, tmp_path, trained_model, migrated_databases) -> Iterator[Registry]:
    """Where the version was trained: two ready versions, artifacts in the database."""
    registry = seeded_copy(
        migrated_databases, database_url, tmp_path / "source", trained_model, versions=2, artifacts=DATABASE
    )
    yield registry
    registry.engine.dispose()


@pytest.fixture
def target_url(database_url, tmp_path, migrated_databases) -> Iterator[str]:
    """Another registry's database, of the same kind as the source's."""
    with migrated_databases.fresh(kind_of(database_url), tmp_path, "target.db") as url:
        yield url


@pytest.fixture
def target(target_url, tmp_path, trained_model, migrated_databases) -> Iterator[Registry]:
    """The registry the version moves to: one version of its own already, artifacts in a directory."""
    registry = seeded_copy(migrated_databases, target_url, tmp_path / "target", trained_model)
    yield registry
    registry.engine.dispose()


def cli(registry: Registry, *args: str):
    """``coe-template`` run against ``registry``'s database, store and artifact store."""
    env = {
        "DATABASE_URL": registry.engine.url.render_as_string(hide_password=False),
        "COE_ARTIFACT_STORE": registry.artifacts.kind,
    }
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


def rewrite(path: Path, changed: dict[str, bytes], *, extra: Sequence[tarfile.TarInfo] = ()) -> Path:
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
    assert result.output == (
        f"{MODEL}: imported {MODEL} version 2 (run {original.run_id}) as version 2, ready; "
        f"promote it with `coe-template models promote {MODEL} 2`\n"
    )
    imported = target.get_version(MODEL, 2)  # numbered by the target: its next version
    assert imported.status == "ready"
    for key in ("artifacts", "run_id", "args", "dataset", "performance"):
        assert getattr(imported, key) == getattr(original, key), key
    np.testing.assert_array_equal(
        target.load(MODEL, 2).pipeline.predict_proba(TEXTS),
        source.load(MODEL, 2).pipeline.predict_proba(TEXTS),
    )
    assert target.artifacts.kind == DIRECTORY  # from the database store to a directory, digests intact
    assert {
        n: sha256(p.read_bytes())
        for n, p in ((n, target.store / "runs" / original.run_id / n) for n in RUN_FILES)
    } == original.artifacts

    again = cli(target, "models", "import", str(exported), "--model", MODEL)  # never overwrites
    assert again.exit_code == 1
    assert again.output == (
        f"Error: run {original.run_id} is already in this registry, as version 2 of "
        f"{MODEL!r} (imported before, or exported from here): nothing imported\n"
    )
    assert [v.version for v in target.list_versions(MODEL)[0]] == [1, 2]


def test_import_into_a_model_of_another_name_creates_it(target, exported):
    result = cli(target, "models", "import", str(exported), "--model", "tagger-from-elsewhere")
    assert result.exit_code == 0, result.output
    assert target.get_version("tagger-from-elsewhere", 1).status == "ready"


ONLY = "|".join((*RUN_FILES, RECORD_FILE))


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
    refused(
        target,
        changed,
        f"{changed}: {MODEL_FILE} does not match its sha256 in the manifest "
        f"(expected {expected}, found {sha256(bytes(model))}); nothing imported",
    )


def test_a_manifest_that_vouches_for_changed_bytes_is_refused_by_the_run_record(target, exported):
    """Changing the model and its digest in the manifest is not enough: run.json names the digests too."""
    model = members(exported)[f"files/{MODEL_FILE}"] + b"\0"
    manifest = json.loads(members(exported)["manifest.json"])
    manifest["artifacts"][MODEL_FILE] = sha256(model)
    changed = rewrite(
        exported, {f"files/{MODEL_FILE}": model, "manifest.json": json.dumps(manifest).encode()}
    )
    refused(
        target,
        changed,
        f"{changed}: {RECORD_FILE} does not name the manifest's run and digests; nothing imported",
    )


@pytest.mark.parametrize(
    "name", ["../evil.json", "files/../../evil.json", "/tmp/evil.json", "files/sub/x.json", "./manifest.json"]
)
def test_a_member_outside_the_expected_names_is_refused(target, exported, name, tmp_path):
    info = tarfile.TarInfo(name)
    info.size = 1
    changed = rewrite(exported, {}, extra=[info])
    refused(
        target,
        changed,
        f"{changed}: unexpected member {name!r} (an export holds only manifest.json "
        f"and files/<{ONLY}>); nothing imported",
    )
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


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        (b"[]", "malformed manifest.json: not a JSON object"),
        (
            b"{",
            "manifest.json is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (
            {"format": "something/9"},
            ("malformed manifest.json: format is 'something/9', this code reads 'coe-template-version/1'"),
        ),
        ({"artifacts": None}, "malformed manifest.json: 'artifacts' is missing or not a dict"),
        ({"run_id": "../../etc"}, "malformed manifest.json: '../../etc' is not a run id"),
        (
            {"artifacts": {"../x.json": "0" * 64}},
            (
                "malformed manifest.json: artifacts lists '../x.json', "
                f"not a run's file ({', '.join(RUN_FILES)}) with a sha256"
            ),
        ),
        ({"version": -7}, "malformed manifest.json: version -7 is not a version number (1 or more)"),
        ({"version": 0}, "malformed manifest.json: version 0 is not a version number (1 or more)"),
        (
            {"model": "Bad Name/../x"},
            (
                "malformed manifest.json: 'Bad Name/../x' is not a model name: lower-case "
                "letters, digits and hyphens, starting with a letter or digit, at most 63 characters"
            ),
        ),
        (
            {"model": "a" * 64},
            (
                f"malformed manifest.json: {'a' * 64!r} is not a model name: lower-case letters, "
                "digits and hyphens, starting with a letter or digit, at most 63 characters"
            ),
        ),
        (
            {"description": {"x": 1}},
            ("malformed manifest.json: a model's description must be text of at most 2000 characters"),
        ),
        (
            {"description": "d" * 2001},
            ("malformed manifest.json: a model's description must be text of at most 2000 characters"),
        ),
    ],
)
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


# --- what a version records comes from its run's own files ----------------------------------------


def with_file(exported: Path, name: str, data: bytes) -> Path:
    """A copy of an export whose file ``name`` is ``data``, with every digest made right for it
    (manifest and run.json): only the file's contents can then be wrong."""
    contents = members(exported)
    manifest = json.loads(contents["manifest.json"])
    record = json.loads(contents[f"files/{RECORD_FILE}"])
    manifest["artifacts"][name] = record["files"][name] = sha256(data)
    return rewrite(
        exported,
        {
            f"files/{name}": data,
            f"files/{RECORD_FILE}": json.dumps(record).encode(),
            "manifest.json": json.dumps(manifest).encode(),
        },
    )


@pytest.mark.parametrize(
    ("key", "value", "origin"),
    [
        (
            "performance",
            {"overall": {"precision": 0.99, "recall": 0.99, "f1": 0.99, "num_samples": 10}},
            "performance.json",
        ),
        ("args", {"ngram_max": 5, "C": 1.0}, "args.json"),
        ("threshold", 0.99, "threshold.json"),
        ("dataset", {"rows": 1, "sha256": "0" * 64}, RECORD_FILE),
    ],
)
def test_a_manifest_claiming_other_values_than_the_run_files_is_refused(target, exported, key, value, origin):
    """The manifest is no authority: what it claims must be what the digested files hold."""
    manifest = json.loads(members(exported)["manifest.json"])
    if key == "args":
        value = {**manifest["args"], **value}
    changed = rewrite(exported, {"manifest.json": json.dumps({**manifest, key: value}).encode()})
    refused(target, changed, f"{changed}: the manifest's {key} is not the one in {origin}; nothing imported")


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        (
            "performance.json",
            b'{"overall": "junk", "bogus": [1]}',
            "performance.json is not a performance (data.overall must be object)",
        ),
        (
            "performance.json",
            b'{"overall": {"precision": 1.5, "recall": 0.5, "f1": 0.5, "num_samples": 3}}',
            "performance.json is not a performance (data.overall.precision must be smaller than or equal to 1)",
        ),
        (
            "performance.json",
            b"{}",
            "performance.json is not a performance (data must contain at least 1 properties)",
        ),
        (
            "args.json",
            b'{"ngram_max": "lots"}',
            "args.json holds invalid training arguments: ngram_max: Not a valid integer.",
        ),
        ("args.json", b'{"C": NaN}', "args.json is missing or not JSON (NaN is not a JSON number)"),
        ("threshold.json", b"NaN", "threshold.json is missing or not JSON (NaN is not a JSON number)"),
        (
            "threshold.json",
            b"Infinity",
            "threshold.json is missing or not JSON (Infinity is not a JSON number)",
        ),
        ("threshold.json", b"1.5", "threshold.json is not a threshold (a number from 0 to 1)"),
        ("threshold.json", b"true", "threshold.json is not a threshold (a number from 0 to 1)"),
    ],
)
def test_a_run_file_of_the_wrong_shape_is_refused_though_its_digest_is_right(
    target, exported, name, data, why
):
    """Digests prove the bytes are the exported ones, not that they are a performance, arguments, a threshold."""
    changed = with_file(exported, name, data)
    refused(target, changed, f"{changed}: {why}; nothing imported")


def test_nan_in_the_manifest_is_refused(target, exported):
    manifest = (
        members(exported)["manifest.json"].decode().replace('"threshold": ', '"threshold": NaN, "x": ', 1)
    )
    changed = rewrite(exported, {"manifest.json": manifest.encode()})
    refused(target, changed, f"{changed}: manifest.json is not JSON (NaN is not a JSON number)")


# --- model names, descriptions --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad Name", "a" * 64, "_underscore", "x/../y"])
def test_a_model_name_the_api_cannot_address_is_refused(target, exported, name):
    result = cli(target, "models", "import", str(exported), "--model", name)
    shown = repr(name)
    assert (result.exit_code, result.output) == (
        1,
        (
            f"Error: {shown} is not a model name: lower-case letters, "
            "digits and hyphens, starting with a letter or digit, "
            "at most 63 characters\n"
        ),
    )
    assert [m.name for m in target.list_models()] == [MODEL]


def test_import_creates_the_model_with_the_exported_description(target, exported):
    assert cli(target, "models", "import", str(exported), "--model", "tagger-b").exit_code == 0
    assert target.get_model("tagger-b").description == "Tags projects."


# --- exactly a run's files, each within its bound ------------------------------------------------


def test_an_extra_file_with_a_right_digest_is_refused(target, exported):
    """A file no run has (e.g. 300 MB of padding) never becomes part of a version every server loads."""
    padding = b"\0" * 4096
    contents = members(exported)
    manifest = json.loads(contents["manifest.json"])
    manifest["artifacts"]["padding.json"] = sha256(padding)
    changed = rewrite(
        exported, {"files/padding.json": padding, "manifest.json": json.dumps(manifest).encode()}
    )
    refused(
        target,
        changed,
        f"{changed}: unexpected member 'files/padding.json' (an export holds only "
        f"manifest.json and files/<{ONLY}>); nothing imported",
    )


def test_a_json_file_over_its_bound_is_refused(target, exported):
    big = b" " * (1 << 20) + b"[]"  # compresses to a few kB
    changed = with_file(exported, "labels.json", big)
    refused(
        target,
        changed,
        f"{changed}: member 'files/labels.json' has {len(big)} bytes, more than the "
        f"{1 << 20} it may have; nothing imported",
    )


def test_a_model_over_its_bound_is_refused_from_its_header_before_reading(target, tmp_path):
    """The header claims 300 MB and only 1 kB follows: the bound is checked before any byte is read."""
    info = tarfile.TarInfo(f"files/{MODEL_FILE}")
    info.size = 300 << 20
    path = tmp_path / "huge.tar.gz"
    path.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + b"x" * 1024))
    refused(
        target,
        path,
        f"{path}: member 'files/{MODEL_FILE}' has {300 << 20} bytes, more than the "
        f"{256 << 20} it may have; nothing imported",
    )


# --- no orphans -----------------------------------------------------------------------------------


@pytest.fixture
def db_target(database_url, tmp_path, trained_model, migrated_databases) -> Iterator[Registry]:
    """Like ``target`` (a database of its own), its artifacts in that database."""
    with migrated_databases.fresh(kind_of(database_url), tmp_path, "db-target.db") as url:
        registry = seeded_copy(
            migrated_databases, url, tmp_path / "db-target", trained_model, artifacts=DATABASE
        )
        yield registry
        registry.engine.dispose()


def blobs(registry: Registry, run_id: str) -> dict[str, str]:
    with registry.engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT name, sha256 FROM artifact_blobs WHERE run_id = :r"), {"r": run_id}
            ).all()
        )


def test_files_of_a_run_no_version_points_at_are_replaced_not_refused(target, db_target, exported):
    """Left by a crash, an orphan run neither blocks the import nor survives it."""
    run_id = json.loads(members(exported)["manifest.json"])["run_id"]
    db_target.artifacts.put(run_id, {"args.json": b"left by a crash"})
    (target.store / "runs" / run_id).mkdir(parents=True)
    (target.store / "runs" / run_id / "args.json").write_bytes(b"left by a crash")
    for registry in (db_target, target):
        result = cli(registry, "models", "import", str(exported))
        assert result.exit_code == 0, result.output
        version = registry.get_version(MODEL, 2)
        assert registry.load(MODEL, 2).labels  # every file there, each matching its digest
    expected = {**version.artifacts, RECORD_FILE: sha256(members(exported)[f"files/{RECORD_FILE}"])}
    assert blobs(db_target, run_id) == expected
    assert {p.name: sha256(p.read_bytes()) for p in (target.store / "runs" / run_id).iterdir()} == expected


def test_a_version_that_cannot_be_recorded_leaves_no_files(database_url, target, db_target, exported):
    """The database refuses the version at commit: no blobs, no run directory; the next import succeeds."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a commit-time refusal needs a deferred trigger (PostgreSQL)")
    manifest, files = read_export(exported)
    for registry in (db_target, target):
        with registry.engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON model_versions "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        with pytest.raises(Exception, match="refused at commit"):
            registry.import_version(MODEL, manifest, files)
        assert [v.version for v in registry.list_versions(MODEL)[0]] == [1]
        with registry.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse ON model_versions"))
            connection.execute(text("DROP FUNCTION refuse()"))
    assert blobs(db_target, manifest["run_id"]) == {}
    assert not (target.store / "runs" / manifest["run_id"]).exists()
    for registry in (db_target, target):
        assert cli(registry, "models", "import", str(exported)).exit_code == 0


# --- an archive carries a model's numbers, never code (issue 18) ----------------------------------


def test_a_hostile_pickle_archive_with_its_digests_recomputed_is_refused_never_loaded(
    target, exported, tmp_path
):
    """The issue's attack: ``model.joblib`` whose pickle runs code when loaded, every digest made right."""
    marker = tmp_path / "payload-ran"
    payload = hostile.pickle_file(marker)
    contents = members(exported)
    manifest = json.loads(contents["manifest.json"])
    record = json.loads(contents[f"files/{RECORD_FILE}"])
    for files in (manifest["artifacts"], record["files"]):
        del files[MODEL_FILE]
        files[PICKLED_MODEL_FILE] = sha256(payload)
    changed = exported.with_name("pickled.tar.gz")
    with tarfile.open(changed, "w:gz") as archive:
        for name, data in {
            **{n: d for n, d in contents.items() if n != f"files/{MODEL_FILE}"},
            f"files/{PICKLED_MODEL_FILE}": payload,
            f"files/{RECORD_FILE}": json.dumps(record).encode(),
            "manifest.json": json.dumps(manifest).encode(),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    refused(
        target,
        changed,
        f"{changed}: holds {PICKLED_MODEL_FILE}, a pickle (it can run code when read), which this release "
        f"never loads; export the version from a registry where it was trained again (its model is then "
        f"{MODEL_FILE}); nothing imported",
    )
    assert not marker.exists()


HOSTILE = {
    "exec": (
        lambda pipeline, marker: hostile.exec_file(pipeline, marker),
        "builtins.exec, ConstructorFromReduceNode nodes",
        (),
    ),
    "system": (
        lambda pipeline, marker: hostile.system_file(pipeline, marker),
        "os.system, ConstructorFromReduceNode nodes",
        (),
    ),
    "analyzer": (
        lambda pipeline, marker: hostile.analyzer_file(pipeline),
        f"{os.system.__module__}.system",
        ("touch {marker}",),
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_model_file_with_its_digests_recomputed_is_refused_naming_the_type(
    target, exported, trained_model, tmp_path, kind
):
    make, named, texts = HOSTILE[kind]
    marker = tmp_path / "payload-ran"
    data = make(trained_model.pipeline, marker)
    hostile.assert_live(data, marker, tuple(t.format(marker=marker) for t in texts))
    changed = with_file(exported, MODEL_FILE, data)
    run_id = json.loads(members(exported)["manifest.json"])["run_id"]
    refused(
        target,
        changed,
        f"{changed}: {MODEL_FILE}: holds {named}, which a model of this project never holds; "
        "refusing to load it (nothing in it was built); nothing imported",
    )
    assert not marker.exists()
    # The registry's own import checks it too, whoever calls it with files read some other way.
    manifest, files = json.loads(members(exported)["manifest.json"]), members(changed)
    files = {n.removeprefix("files/"): d for n, d in files.items() if n.startswith("files/")}
    manifest["artifacts"][MODEL_FILE] = sha256(data)
    with pytest.raises(NotAnExport) as info:
        target.import_version(MODEL, manifest, files)
    assert str(info.value).startswith(f"run {run_id}: {MODEL_FILE}: holds {named},")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("kind", "what"), [(tarfile.XHDTYPE, "PAX extended"), (tarfile.GNUTYPE_LONGNAME, "GNU long name")]
)
def test_a_header_declaring_a_huge_size_is_refused_before_it_is_read(target, tmp_path, kind, what):
    """The issue's 768 MiB PAX header took the reader to 2.5 GB: its size is refused from the header alone."""
    info = tarfile.TarInfo("././@PaxHeader" if kind == tarfile.XHDTYPE else "././@LongLink")
    info.type, info.size = kind, 768 << 20
    path = tmp_path / "huge-header.tar.gz"
    path.write_bytes(
        gzip.compress(info.tobuf(tarfile.USTAR_FORMAT) + b"a" * 4096)
    )  # 4 kB follow, not 768 MiB
    refused(
        target,
        path,
        f"{path}: a tar header declares {768 << 20} bytes of its own, more than the {1 << 20} an export's "
        "header may have; nothing imported",
    )


def test_a_small_pax_header_is_read_as_tarfile_reads_it(target, exported):
    """Bounding headers refuses none that fit: an export written in PAX format with a header imports."""
    contents = members(exported)
    changed = exported.with_name("pax.tar.gz")
    with tarfile.open(changed, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), {"comment": "ü" * 1000}
            archive.addfile(info, io.BytesIO(data))
    result = cli(target, "models", "import", str(changed))
    assert result.exit_code == 0, result.output

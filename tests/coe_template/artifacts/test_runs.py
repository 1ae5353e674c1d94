"""The model store: runs written atomically, listed in order, loaded only when intact."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import sklearn
import skops

from coe_template.artifacts.runs import (
    MODEL_FILE,
    PICKLED_MODEL_FILE,
    RECORD_FILE,
    RUN_ID,
    ArtifactError,
    PickledModel,
    RunNotFound,
    load_artifacts,
    save_run,
    sha256,
)
from coe_template.artifacts.stores import DirectoryStore
from coe_template.model.args import UnknownArgument, parse_args
from coe_template.model.data import clean_text, load_dataset
from coe_template.model.model_file import MAX_SCHEMA_BYTES, TRUSTED_TYPES, UntrustedModelFile, types_in
from coe_template.model.model_file import dumps as dump_pipeline
from coe_template.model.train import train
from tests import hostile
from tests.coe_template.model.test_data import project_rows, write_rows

TEXTS = [
    "Sentiment of text with a transformer",
    "Detection of objects in camera video",
    "Serving models in production",
    "Forecasting sales",
]
RUN_FILES = {MODEL_FILE, "args.json", "labels.json", "threshold.json", "performance.json"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("store-data") / "projects.csv"
    return load_dataset(write_rows(path, project_rows(per_tag=15)))


@pytest.fixture(scope="module")
def model(dataset):
    return train(dataset, parse_args({"C": 5.0, "seed": 99}))


@pytest.fixture
def store(tmp_path):
    return DirectoryStore(tmp_path / "store")


@pytest.fixture
def run_id(model, store):
    run_id, _digests = save_run(model, store)
    return run_id


# --- round trip -----------------------------------------------------------------------------------


def test_round_trip_gives_back_the_same_model(model, store, run_id):
    loaded = load_artifacts(run_id, store)
    assert loaded.run_id == run_id
    cleaned = [clean_text(t) for t in TEXTS]
    np.testing.assert_array_equal(
        loaded.pipeline.predict_proba(cleaned), model.pipeline.predict_proba(cleaned)
    )
    assert loaded.labels == model.labels
    assert loaded.threshold == model.threshold
    assert loaded.args == model.args.to_dict()
    assert loaded.performance == model.performance


def test_a_run_is_one_directory_named_by_its_id(store, run_id):
    assert RUN_ID.match(run_id)
    assert [p.name for p in store.runs.iterdir()] == [run_id]  # no temporary left behind
    assert {p.name for p in (store.runs / run_id).iterdir()} == RUN_FILES | {RECORD_FILE}


def test_run_record_holds_fingerprint_versions_and_digests(dataset, model, store, run_id):
    run = store.runs / run_id
    record = json.loads((run / RECORD_FILE).read_text(encoding="utf-8"))
    assert record["run_id"] == run_id
    assert record["threshold"] == model.threshold
    assert record["dataset"] == dataset.fingerprint
    assert record["versions"]["scikit-learn"] == sklearn.__version__
    assert record["versions"]["skops"] == skops.__version__
    assert record["versions"]["python"]
    assert set(record["files"]) == RUN_FILES
    for name, digest in record["files"].items():
        assert digest == hashlib.sha256((run / name).read_bytes()).hexdigest()
    assert record == load_artifacts(run_id, store).record


# --- ids -----------------------------------------------------------------------------------------


def test_run_ids_are_unique_and_sort_by_creation(model, store):
    ids = [save_run(model, store)[0] for _ in range(5)]  # several within one second
    assert len(set(ids)) == 5
    assert sorted(ids) == ids
    assert all(RUN_ID.fullmatch(i) for i in ids)


# --- refusals -------------------------------------------------------------------------------------


def test_a_tampered_model_is_refused_naming_the_file(store, run_id):
    path = store.runs / run_id / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as info:
        load_artifacts(run_id, store)
    message = str(info.value)
    assert MODEL_FILE in message
    assert run_id in message
    assert "refusing to load" in message


def test_a_swapped_model_is_never_unpickled(store, run_id, tmp_path):
    """A replaced model file whose digest was not recomputed is not even opened as a model."""
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (store.runs / run_id / MODEL_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ArtifactError, match=MODEL_FILE):
        load_artifacts(run_id, store)
    assert not marker.exists()


# --- forged model files, their digests recomputed: refused by what they hold, never built -----------


def forge(store, run_id, data, name=MODEL_FILE):
    """Replace the run's model by ``data`` (as ``name``) and record its digest, as someone who can write the store would."""
    run = store.runs / run_id
    (run / MODEL_FILE).unlink()
    (run / name).write_bytes(data)
    record = json.loads((run / RECORD_FILE).read_text(encoding="utf-8"))
    del record["files"][MODEL_FILE]
    record["files"][name] = sha256(data)
    (run / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")


def test_a_model_file_holds_exactly_the_trusted_types(model):
    """The list is the types a trained model holds: none missing, none spare."""
    types, nodes = types_in(dump_pipeline(model.pipeline), "model")
    assert types == set(TRUSTED_TYPES)
    assert nodes == {"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode"}


HOSTILE = {
    "builtins.exec called while building": (
        hostile.exec_file,
        "builtins.exec, ConstructorFromReduceNode nodes",
    ),
    "os.system called while building": (hostile.system_file, "os.system, ConstructorFromReduceNode nodes"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_forged_model_file_that_runs_code_is_refused_naming_it_and_never_built(
    model, store, run_id, tmp_path, kind
):
    make, named = HOSTILE[kind]
    marker = tmp_path / "payload-ran"
    data = make(model.pipeline, marker)
    hostile.assert_live(data, marker)
    forge(store, run_id, data)
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: holds {named}, which a model of this project never holds; "
        "refusing to load it (nothing in it was built)"
    )
    assert isinstance(info.value, ArtifactError)  # a 503 problem, as a tampered file is
    assert not marker.exists()


def test_a_vectorizer_whose_analyzer_is_a_function_is_refused(model, store, run_id, tmp_path):
    """A callable analyzer would be called on every client's text: here, as a shell command."""
    marker = tmp_path / "payload-ran"
    data = hostile.analyzer_file(model.pipeline)
    hostile.assert_live(data, marker, texts=(f"touch {marker}",))
    forge(store, run_id, data)
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: holds {os.system.__module__}.system, which a model of this project "
        "never holds; refusing to load it (nothing in it was built)"
    )


def test_a_type_skops_trusts_by_default_but_this_project_never_trains_is_refused(model, store, run_id):
    """skops trusts every scikit-learn estimator by default; the project's own list is the one that counts."""
    forge(store, run_id, hostile.retyped_file(model.pipeline, "TfidfVectorizer", "CountVectorizer"))
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: holds sklearn.feature_extraction.text.CountVectorizer, which a model "
        "of this project never holds; refusing to load it (nothing in it was built)"
    )


def test_trusted_types_with_parameters_its_arguments_never_train_are_refused(model, store, run_id, tmp_path):
    """``input="filename"`` would make the vectorizer open whatever path a client sends as a text."""
    forged = copy.deepcopy(model.pipeline)
    forged[0].input = "filename"
    forge(store, run_id, dump_pipeline(forged))
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: its parameters tfidf__input are not the ones its args.json trains; "
        "refusing to load it"
    )


def test_a_run_stored_as_a_pickle_is_refused_unread_saying_how_to_train_again(store, run_id, tmp_path):
    marker = tmp_path / "payload-ran"
    forge(store, run_id, hostile.pickle_file(marker), name=PICKLED_MODEL_FILE)
    with pytest.raises(PickledModel) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id} was stored as a pickle (model.joblib), which this release no longer loads "
        "(a pickle can run code when read): train it again with `coe-template train`, and promote the new version"
    )
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(RUN_FILES - {MODEL_FILE}))
def test_any_tampered_json_file_is_refused_by_name(store, run_id, name):
    path = store.runs / run_id / name
    path.write_text(path.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(ArtifactError, match=name):
        load_artifacts(run_id, store)


def test_a_deleted_artifact_is_refused_by_name(store, run_id):
    (store.runs / run_id / "labels.json").unlink()
    with pytest.raises(ArtifactError, match=r"labels\.json .*found missing"):
        load_artifacts(run_id, store)


def test_a_missing_run_is_run_not_found(store, run_id):
    absent = "20000101T000000000000Z-000000"
    with pytest.raises(RunNotFound, match=absent):
        load_artifacts(absent, store)


def test_a_run_without_its_record_is_run_not_found(store, run_id):
    (store.runs / run_id / RECORD_FILE).unlink()
    with pytest.raises(RunNotFound):
        load_artifacts(run_id, store)


@pytest.mark.parametrize(
    "bad",
    [
        "../etc",
        "..",
        "",
        "latest",
        "20000101T000000000000Z-ABCDEF",
        "20000101T000000000000Z-abcdef/../x",
        "/etc/passwd",
    ],
)
def test_a_malformed_run_id_is_run_not_found(store, run_id, bad):
    with pytest.raises(RunNotFound, match="not a run id"):
        load_artifacts(bad, store)


# --- Artifacts.arg --------------------------------------------------------------------------------


def test_arg_returns_a_training_argument(store, run_id):
    artifacts = load_artifacts(run_id, store)
    assert artifacts.arg("C") == 5.0
    assert artifacts.arg("seed") == 99
    assert artifacts.arg("threshold") is None


def test_unknown_arg_names_the_argument_and_the_known_ones(store, run_id):
    artifacts = load_artifacts(run_id, store)
    with pytest.raises(UnknownArgument) as info:
        artifacts.arg("learning_rate")
    message = str(info.value)
    assert "'learning_rate'" in message
    assert "ngram_max" in message and "seed" in message
    assert isinstance(info.value, LookupError)


# --- the directory store ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../registry.db", "/etc/passwd", "run.json/..", ".hidden.json", "a/b.json"]
)
def test_a_file_name_that_is_a_path_is_refused(store, run_id, name):
    with pytest.raises(ArtifactError, match="not a file name of a run"):
        store.get(run_id, name)


def test_a_run_is_never_written_over(model, store, run_id):
    original = {p.name: p.read_bytes() for p in (store.runs / run_id).iterdir()}
    with pytest.raises(OSError):
        store.put(run_id, {"labels.json": b"[]"})
    assert {p.name: p.read_bytes() for p in (store.runs / run_id).iterdir()} == original
    assert [p.name for p in store.runs.iterdir()] == [run_id]  # and no temporary left behind


def test_a_model_file_that_is_not_a_zip_or_whose_schema_is_over_its_bound_is_refused_unread(store, run_id):
    forge(store, run_id, b"\x80\x04 not a zip")
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: not a model file (a skops zip with schema.json): "
        "File is not a zip file; refusing to load it"
    )
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (MAX_SCHEMA_BYTES + 1))  # compresses to a few kB
    forge(store, run_id, big.getvalue())
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: its schema.json has {MAX_SCHEMA_BYTES + 1} bytes, more than the "
        f"{MAX_SCHEMA_BYTES} a model's may; refusing to load it"
    )


def test_trusted_types_holding_arrays_that_do_not_fit_are_refused_not_served(model, store, run_id):
    """Numbers that would fail every prediction (a 500) are refused at load (a 503 naming them)."""
    forged = copy.deepcopy(model.pipeline)
    forged[-1].coef_ = forged[-1].coef_[:, :10].copy()
    forge(store, run_id, dump_pipeline(forged))
    with pytest.raises(UntrustedModelFile) as info:
        load_artifacts(run_id, store)
    assert str(info.value) == (
        f"run {run_id}: {MODEL_FILE}: its coef_ is not a float array fitting a vocabulary of "
        f"{len(model.pipeline[0].vocabulary_)} terms; refusing to load it"
    )

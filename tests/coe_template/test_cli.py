"""The ``coe-template`` command, run through click's CliRunner against a temporary store.

The registry is the SQLite file the store holds by default; every COE_* variable and
DATABASE_URL are removed first, so the caller's environment cannot point it elsewhere.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from coe_template.batch.jobs import BatchJobs
from coe_template.cli import main
from coe_template.model.data import ACCEPTED_TAGS
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.db import head_revision
from config.settings import Settings
from tests.coe_template.model.test_data import project_rows, write_rows
from tests.coe_template.registry.test_migrations import downgrade_to
from tests.servers import free_port

NAME = "project-tagger"
TEXTS = ["Detection of objects in camera video", "Sentiment of text with a transformer"]


def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command reads DATABASE_URL and COE_* variables: make sure the caller's own do not leak in."""
    for name in list(os.environ):
        if name.startswith("COE_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    clean(monkeypatch)


def runner_for(store: Path):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--store", str(store), *args])

    return run


@pytest.fixture
def store(tmp_path):
    """A store whose database has the registry's schema (``coe-template db upgrade``), nothing more."""
    store = tmp_path / "store"
    upgraded(runner_for(store))
    return store


def upgraded(cli) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output


@pytest.fixture
def cli(store):
    return runner_for(store)


@pytest.fixture
def registry(store):
    """The registry the command uses, opened the same way, to check what it did."""
    registry = Registry.open(Settings(model_store=store).db_url, store)
    yield registry
    registry.engine.dispose()


@pytest.fixture(scope="module")
def module_data(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("cli-data") / "small.csv", project_rows(per_tag=15))


@pytest.fixture
def data(module_data):
    return module_data


@pytest.fixture(scope="module")
def unsure_args(tmp_path_factory):
    """Arguments for a version that answers ``other`` to everything: easy to tell from version 1."""
    path = tmp_path_factory.mktemp("cli-args") / "unsure.json"
    path.write_text(json.dumps({"threshold": 1.0}), encoding="utf-8")
    return path


def train_ok(cli, data, *extra: str) -> dict:
    result = cli("train", "--data", str(data), *extra)
    assert result.exit_code == 0, result.output
    _, _, summary = result.stdout.partition("\n")
    return json.loads(summary)


@pytest.fixture(scope="module")
def two_versions_store(tmp_path_factory, module_data, unsure_args):
    """A store made by the CLI: version 1 (production) with the default arguments, 2 with threshold 1.0."""
    store = tmp_path_factory.mktemp("cli-template") / "store"
    with pytest.MonkeyPatch.context() as monkeypatch:
        clean(monkeypatch)
        cli = runner_for(store)
        upgraded(cli)
        run_ids = [
            train_ok(cli, module_data)["run_id"],
            train_ok(cli, module_data, "--args", str(unsure_args))["run_id"],
        ]
    gc.collect()  # the command's registry is never closed explicitly: let its connections go
    return store, run_ids


@pytest.fixture
def two_versions(two_versions_store, store):
    """A copy of that store for this test alone; the run ids of its two versions."""
    template, run_ids = two_versions_store
    shutil.copytree(template, store, dirs_exist_ok=True)  # its database replaces the empty one
    return run_ids


def failed_clearly(result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    _, _, error = result.stderr.partition("Error: ")  # after any progress lines
    assert error, result.stderr
    for phrase in phrases:
        assert phrase in error
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- train ----------------------------------------------------------------------------------------


def test_the_first_train_registers_version_1_as_production(cli, data, store, registry):
    result = cli("train", "--data", str(data))
    assert result.exit_code == 0, result.output
    first_line, _, rest = result.stdout.partition("\n")
    version = registry.get_version(NAME, 1)
    assert re.fullmatch(
        rf"{NAME} version 1 \(run {version.run_id}\): trained on 60 rows, threshold [0-9.]+", first_line
    )
    summary = json.loads(rest)
    assert summary["model"] == NAME
    assert summary["version"] == 1
    assert summary["run_id"] == version.run_id
    assert summary["test"]["num_samples"] > 0
    assert 0.0 <= summary["test"]["f1"] <= 1.0
    assert version.status == "ready"
    assert registry.get_alias(NAME, PRODUCTION) == 1
    assert (store / "registry.db").is_file()  # the registry is a SQLite file in the store


def test_a_second_train_adds_version_2_but_production_stays_on_1(cli, data, registry):
    train_ok(cli, data)
    summary = train_ok(cli, data)
    assert summary["version"] == 2
    assert registry.get_alias(NAME, PRODUCTION) == 1
    assert registry.get_version(NAME, 2).status == "ready"
    assert registry.get_version(NAME, 2).aliases == ()


def test_database_url_chooses_where_the_registry_lives(data, tmp_path, monkeypatch):
    elsewhere, store = tmp_path / "elsewhere.db", tmp_path / "another-store"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere}")
    cli = runner_for(store)
    upgraded(cli)
    train_ok(cli, data)
    assert elsewhere.is_file()
    assert not (store / "registry.db").exists()
    registry = Registry.open(f"sqlite:///{elsewhere}", store)
    try:
        assert registry.get_alias(NAME, PRODUCTION) == 1
    finally:
        registry.engine.dispose()


def test_train_if_missing_trains_only_when_there_is_no_production_version(cli, data, registry):
    first = cli("train", "--data", str(data), "--if-missing")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.partition("\n")[2])["version"] == 1

    second = cli("train", "--data", str(data), "--if-missing")
    assert second.exit_code == 0, second.output
    assert second.stdout == f"{NAME} already has a production version (1); not training\n"
    assert registry.get_model(NAME).version_count == 1


STEPS = (
    "training\nsplitting data\nfitting the pipeline\nchoosing the threshold\nevaluating on the test split\n"
)


def test_train_says_what_it_trains_on_before_the_work_then_each_step(cli, data):
    """What `make serve` shows while it trains its first version, on stderr (stdout is the summary)."""
    first = cli("train", "--data", str(data), "--if-missing")
    assert first.exit_code == 0, first.output
    assert first.stderr == f"{NAME} has no production version: training one on {data}\n" + STEPS
    second = cli("train", "--data", str(data))
    assert second.exit_code == 0, second.output
    assert second.stderr == f"training a new version of {NAME} on {data}\n" + STEPS


def test_train_with_an_args_file(cli, data, registry, unsure_args):
    result = cli("train", "--data", str(data), "--args", str(unsure_args))
    assert result.exit_code == 0, result.output
    assert "threshold 1.0" in result.stdout
    assert registry.get_version(NAME, 1).args["threshold"] == 1.0


def test_train_with_bad_args_fails_naming_the_field(cli, data, registry, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ngram_max": 99}), encoding="utf-8")
    failed_clearly(cli("train", "--data", str(data), "--args", str(args)), "ngram_max")
    assert registry.list_versions(NAME) == ([], None)


def test_train_on_a_missing_file_fails_clearly(cli, registry, tmp_path):
    missing = tmp_path / "missing.csv"
    failed_clearly(cli("train", "--data", str(missing)), f"data file not found: {missing}")
    assert registry.list_versions(NAME) == ([], None)


def test_train_on_a_dataset_too_small_to_split_fails_clearly(cli, registry, write_csv):
    tiny = write_csv(project_rows(per_tag=2), name="tiny.csv")
    failed_clearly(cli("train", "--data", str(tiny)), "Every tag needs enough examples")
    assert registry.list_versions(NAME) == ([], None)


def test_train_under_another_model_name(cli, data, registry):
    train_ok(cli, data)
    summary = train_ok(cli, data, "--model", "ticket-router")
    assert (summary["model"], summary["version"]) == ("ticket-router", 1)
    assert registry.get_alias("ticket-router", PRODUCTION) == 1  # its own first version
    assert registry.get_model(NAME).version_count == 1


# --- evaluate -------------------------------------------------------------------------------------


def test_evaluate_scores_the_production_version(cli, two_versions, write_csv):
    holdout = write_csv(project_rows(per_tag=5), name="holdout.csv")
    result = cli("evaluate", "--data", str(holdout))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["run_id"] == two_versions[0]
    assert report["data"] == str(holdout)
    performance = report["performance"]
    assert set(performance) == {"overall", "class", "slices"}
    assert performance["overall"]["num_samples"] == 20
    assert set(performance["class"]) == set(ACCEPTED_TAGS)
    assert all(block["num_samples"] == 5 for block in performance["class"].values())


def test_evaluate_a_chosen_version(cli, two_versions, data):
    production = json.loads(cli("evaluate", "--data", str(data)).stdout)
    result = cli("evaluate", "--data", str(data), "--version", "2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["run_id"] == two_versions[1]
    # Version 2 answers "other" to everything: it scores worse than production.
    assert report["performance"]["overall"]["f1"] < production["performance"]["overall"]["f1"]


def test_evaluate_on_a_missing_file_fails_clearly(cli, two_versions, tmp_path):
    failed_clearly(cli("evaluate", "--data", str(tmp_path / "missing.csv")), "data file not found")


# --- predict --------------------------------------------------------------------------------------


def test_predict_uses_the_production_version(cli, two_versions):
    result = cli("predict", *TEXTS)
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)
    assert [p["input_text"] for p in predictions] == TEXTS
    assert [p["predicted_tag"] for p in predictions] == ["computer-vision", "natural-language-processing"]
    for prediction in predictions:
        assert set(prediction["probabilities"]) == set(ACCEPTED_TAGS)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_predict_with_a_chosen_version(cli, two_versions):
    result = cli("predict", "--version", "2", *TEXTS)
    assert result.exit_code == 0, result.output
    assert [p["predicted_tag"] for p in json.loads(result.stdout)] == ["other", "other"]


def test_predict_follows_a_promotion(cli, two_versions):
    assert cli("models", "promote", NAME, "2", "--reason", "r").exit_code == 0
    result = cli("predict", *TEXTS)
    assert [p["predicted_tag"] for p in json.loads(result.stdout)] == ["other", "other"]


def test_batch_predict_stores_every_row_and_prints_the_job_as_the_api_serves_it(
    cli, two_versions, tmp_path, registry
):
    rows = tmp_path / "projects.csv"
    rows.write_text("id,text\n" + "".join(f"p{n},{text}\n" for n, text in enumerate(TEXTS)), encoding="utf-8")
    result = cli("batch-predict", str(rows))
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    moments = {key: job.pop(key) for key in ("created_at", "started_at", "finished_at", "expires_at")}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", m) for m in moments.values()), (
        moments
    )
    finished, expires = (datetime.fromisoformat(moments[k]) for k in ("finished_at", "expires_at"))
    assert expires - finished == timedelta(days=7)  # COE_BATCH_RETENTION_DAYS's default
    assert job == {
        "id": job["id"],
        "status": "succeeded",
        "model": {"name": NAME, "version": 1},
        "items": {"total": 2, "done": 2},
        "progress": 1.0,
        "error": None,
    }
    assert f"job {job['id']}: 2 items with {NAME} version 1" in result.stderr
    results, _ = BatchJobs(registry).results(job["id"], limit=1000)
    assert [(r.item_id, r.predicted_tag) for r in results] == [
        ("p0", "computer-vision"),
        ("p1", "natural-language-processing"),
    ]


@pytest.mark.parametrize(
    ("texts", "refused"),
    [
        (["   "], "texts[0] has no text"),
        ([""], "texts[0] has no text"),
        (["Object detection", " \t\n ", "ok", "\x1c"], "texts[1] has no text; texts[3] has no text"),
    ],
)
def test_predict_refuses_whitespace_only_text(cli, two_versions, texts, refused):
    """The batch items' rule and wording (``blank``, ``NO_TEXT``): whitespace as str.isspace() has it."""
    result = cli("predict", *texts)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for TEXTS: {refused}"
    assert result.stdout == ""


def test_predict_needs_at_least_one_text(cli, two_versions):
    result = cli("predict")
    assert result.exit_code == 2
    assert result.stderr == (
        "Usage: main predict [OPTIONS] TEXTS...\n"
        "Try 'main predict --help' for help.\n"
        "\n"
        "Error: Missing argument 'TEXTS...'.\n"
    )
    assert result.stdout == ""


def test_predict_on_an_empty_store_fails_clearly(cli):
    failed_clearly(cli("predict", "Object detection in images"), NAME)


@pytest.mark.parametrize(
    "command",
    [
        ["predict", "Object detection in images"],
        ["evaluate", "--data", "{data}"],
    ],
)
def test_an_empty_store_says_to_train_first(cli, data, command):
    result = cli(*[arg.format(data=data) for arg in command])
    assert result.exit_code == 1
    assert "coe-template train" in result.stderr


# --- db ------------------------------------------------------------------------------------------


def test_nothing_but_db_upgrade_creates_the_schema(tmp_path, data):
    cli = runner_for(tmp_path / "fresh")
    url = f"sqlite:///{tmp_path / 'fresh' / 'registry.db'}"
    for command in (["train", "--data", str(data)], ["models", "list"], ["db", "check"]):
        result = cli(*command)
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: the database {url} has no registry schema yet: run `coe-template db upgrade` first\n",
        )
    first, again = cli("db", "upgrade"), cli("db", "upgrade")
    assert (first.exit_code, first.stdout) == (
        0,
        f"{url}: schema upgraded from revision (empty) to {head_revision()}\n",
    )
    assert (again.exit_code, again.stdout) == (0, f"{url}: schema already at revision {head_revision()}\n")
    checked = cli("db", "check")
    assert (checked.exit_code, checked.stdout) == (
        0,
        f"{url}: schema at revision {head_revision()}, current\n",
    )
    assert cli("models", "list", "--json").stdout == "[]\n"


def test_an_older_schema_is_refused_until_upgraded(tmp_path, store):
    url = f"sqlite:///{store / 'registry.db'}"
    engine = create_engine(url)
    try:
        downgrade_to(engine, "0005")
    finally:
        engine.dispose()
    cli = runner_for(store)
    result = cli("models", "list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: the database {url} is at schema revision 0005, this code needs {head_revision()}: "
        "run `coe-template db upgrade` first\n",
    )
    assert cli("db", "upgrade").stdout == f"{url}: schema upgraded from revision 0005 to {head_revision()}\n"
    assert cli("models", "list").exit_code == 0


def test_a_newer_schema_than_the_code_knows_is_refused(store):
    url = f"sqlite:///{store / 'registry.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    result = runner_for(store)("models", "list")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: the database {url} is at schema revision 9999, newer than this code knows "
        f"(its newest is {head_revision()}): run the newer code, or a matching release\n",
    )


def test_db_upgrade_past_the_newest_revision_known_is_refused_in_one_line(store):
    url = f"sqlite:///{store / 'registry.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    result = runner_for(store)("db", "upgrade")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: the database {url} is at schema revision 9999, newer than this code knows "
        f"(its newest is {head_revision()}): run the newer code, or a matching release\n",
    )


def test_a_database_that_cannot_be_reached_is_named_with_the_drivers_reason_and_no_password(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://app:s3cret-pw@127.0.0.1:{free_port()}/coe")
    result = runner_for(tmp_path / "store")("db", "check")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: the database is not available: try again later (connection failed: "
    )
    assert result.stderr.endswith("Connection refused; check DATABASE_URL if it persists)\n")
    assert "s3cret-pw" not in result.output


def test_a_malformed_database_url_is_refused_without_echoing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "not a url s3cret-pw")
    result = runner_for(tmp_path / "store")("db", "upgrade")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: DATABASE_URL is not a database URL (e.g. postgresql+psycopg://user@host/db)\n",
    )


# --- promote / rollback ---------------------------------------------------------------------------


def test_promote_then_rollback(cli, two_versions, registry):
    failed_clearly(
        cli("models", "promote", NAME, "2"),
        "moving 'production' needs a reason (1 to 500 characters): say why",
    )
    promoted = cli("models", "promote", NAME, "2", "--reason", "v2 is better")
    assert promoted.exit_code == 0, promoted.output
    assert promoted.stdout == f"{NAME}: production -> version 2\n"
    assert registry.get_alias(NAME, PRODUCTION) == 2

    refused = cli("models", "rollback", NAME)
    assert (refused.exit_code, refused.stderr.splitlines()[-1]) == (2, "Error: Missing option '--reason'.")
    rolled_back = cli("models", "rollback", NAME, "--reason", "v2 is worse")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert rolled_back.stdout == f"{NAME}: production -> version 1 (was 2)\n"
    assert registry.get_alias(NAME, PRODUCTION) == 1
    versions = cli("models", "versions", NAME).stdout.splitlines()[1:]  # under the table's header
    assert [line.split()[:3] for line in versions] == [["1", "ready", PRODUCTION], ["2", "ready", "-"]]


def test_rollback_with_no_earlier_version_fails_clearly(cli, two_versions, registry):
    failed_clearly(
        cli("models", "rollback", NAME, "--reason", "r"),
        f"'production' of '{NAME}' has served no other version that is still ready: nothing to roll back to",
    )
    assert registry.get_alias(NAME, PRODUCTION) == 1


def test_rollback_skips_archived_versions(cli, data, registry):
    for _ in range(3):
        train_ok(cli, data)
    assert cli("models", "promote", NAME, "3", "--reason", "r").exit_code == 0
    assert cli("models", "archive", NAME, "2").exit_code == 0
    result = cli("models", "rollback", NAME, "--reason", "r")
    assert result.exit_code == 0, result.output
    assert registry.get_alias(NAME, PRODUCTION) == 1


def test_rollback_to_a_chosen_version(cli, data, registry):
    for _ in range(3):
        train_ok(cli, data)
    assert cli("models", "promote", NAME, "3", "--reason", "r").exit_code == 0
    result = cli("models", "rollback", NAME, "--to", "1", "--reason", "r")
    assert result.exit_code == 0, result.output
    assert registry.get_alias(NAME, PRODUCTION) == 1


# --- archive --------------------------------------------------------------------------------------


def test_archive_is_refused_while_production_points_at_the_version(cli, two_versions, registry):
    failed_clearly(cli("models", "archive", NAME, "1"), "production")
    assert registry.get_version(NAME, 1).status == "ready"


def test_archive_works_once_production_has_moved(cli, two_versions, registry):
    assert cli("models", "promote", NAME, "2", "--reason", "r").exit_code == 0
    result = cli("models", "archive", NAME, "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{NAME}: version 1 archived\n"
    assert registry.get_version(NAME, 1).status == "archived"
    # An archived version can no longer be promoted, nor rolled back to.
    failed_clearly(cli("models", "promote", NAME, "1", "--reason", "r"), "archived")
    failed_clearly(cli("models", "rollback", NAME, "--reason", "r"), "nothing to roll back to")


def test_a_version_still_training_is_cancelled_not_archived(cli, two_versions, registry):
    queued = cli("train", "--queue")
    assert (queued.exit_code, queued.stdout) == (0, "3\n"), queued.output
    failed_clearly(
        cli("models", "archive", NAME, "3"), f"version 3 of '{NAME}' is still training: cancel it first"
    )
    result = cli("models", "cancel", NAME, "3")
    assert (result.exit_code, result.stdout) == (0, f"{NAME}: version 3 cancelled (failed)\n"), result.output
    version = registry.get_version(NAME, 3)
    assert (version.status, version.error) == (
        "failed",
        "cancelled by an administrator before training finished",
    )
    failed_clearly(
        cli("models", "cancel", NAME, "3"),
        f"version 3 of '{NAME}' is failed, not training: nothing to cancel",
    )
    failed_clearly(
        cli("models", "cancel", NAME, "2"), f"version 2 of '{NAME}' is ready, not training: nothing to cancel"
    )
    assert cli("models", "archive", NAME, "3").exit_code == 0


# --- unknown models and versions ------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["models", "versions", "nope"],
        ["models", "promote", "nope", "1"],
        ["models", "rollback", "nope", "--reason", "r"],
        ["models", "archive", "nope", "1"],
        ["models", "cancel", "nope", "1"],
        ["predict", "--model", "nope", "some text"],
        ["evaluate", "--model", "nope", "--data", "{data}"],
    ],
)
def test_an_unknown_model_fails_clearly(cli, two_versions, data, command):
    failed_clearly(cli(*[arg.format(data=data) for arg in command]), "model 'nope' not found")


@pytest.mark.parametrize(
    "command",
    [
        ["models", "promote", NAME, "9"],
        ["models", "archive", NAME, "9"],
        ["models", "cancel", NAME, "9"],
        ["models", "rollback", NAME, "--to", "9", "--reason", "r"],
        ["predict", "--version", "9", "some text"],
        ["evaluate", "--version", "9", "--data", "{data}"],
    ],
)
def test_an_unknown_version_fails_clearly(cli, two_versions, data, command, registry):
    failed_clearly(cli(*[arg.format(data=data) for arg in command]), f"model '{NAME}' has no version 9")
    assert registry.get_alias(NAME, PRODUCTION) == 1


@pytest.mark.parametrize("command", [["models", "promote", NAME, "0"], ["predict", "--version", "0", "x"]])
def test_version_numbers_start_at_1(cli, two_versions, command):
    result = cli(*command)
    assert result.exit_code == 2
    assert "0" in result.stderr


# --- python -m coe_template ----------------------------------------------------------------------


def test_python_m_coe_template_runs_the_command(tmp_path):
    """Where the console script is not on PATH (a venv not activated), ``python -m`` is the same command."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("COE_") and name != "DATABASE_URL"
    }
    store = tmp_path / "store"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "coe_template", *args],
            check=False,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    helped = run("--help")
    assert (helped.returncode, helped.stderr) == (0, "")
    assert helped.stdout.startswith("Usage: python -m coe_template [OPTIONS] COMMAND [ARGS]...\n")
    listed = helped.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [
        line.split()[0] for line in listed if line.startswith("  ") and not line.startswith("   ")
    ] == sorted(main.commands)

    upgraded = run("--store", str(store), "db", "upgrade")
    url = f"sqlite:///{store / 'registry.db'}"
    assert (upgraded.returncode, upgraded.stdout, upgraded.stderr) == (
        0,
        f"{url}: schema upgraded from revision (empty) to {head_revision()}\n",
        "",
    )
    checked = runner_for(store)("db", "check")  # the schema it made is the one the command expects
    assert (checked.exit_code, checked.stdout) == (
        0,
        f"{url}: schema at revision {head_revision()}, current\n",
    )

"""Upgrading a database keeps what it holds: a job queued before an upgrade runs after it."""

from __future__ import annotations

from argparse import Namespace

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from coe_template.artifacts.runs import RunNotFound
from coe_template.artifacts.stores import DATABASE
from coe_template.batch.jobs import BatchJobs, new_job_token
from coe_template.registry import Registry
from coe_template.registry.db import MIGRATIONS, upgrade
from coe_template.registry.training import TrainingJobs
from tests.conftest import MODEL, seeded_registry


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """Here a fresh database is empty, as an operator's first one is: every migration runs in the test."""
    return empty_database_url


def downgrade_to(engine: Engine, revision: str, *x: str) -> None:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        config.cmd_opts = Namespace(x=list(x))
        command.downgrade(config, revision)


def test_items_of_a_job_queued_before_0003_move_into_its_chunks(database_url, tmp_path, trained_model):
    seeded_registry(database_url, tmp_path / "store", trained_model).engine.dispose()  # at head
    upgrade_from = create_engine(database_url)
    downgrade_to(upgrade_from, "0002")
    with upgrade_from.begin() as connection:  # a job as 0002 stored it
        connection.execute(
            text(
                "INSERT INTO batch_jobs (id, model_name, model_version, status, request_sha256, total_items,"
                " done_items, total_chunks, done_chunks, created_at)"
                " VALUES ('00000000-0000-0000-0000-000000000001', :model, 1, 'queued', 'x', 3, 0, 2, 0,"
                " CURRENT_TIMESTAMP)"
            ),
            {"model": MODEL},
        )
        for number, first, last in [(0, 0, 1), (1, 2, 2)]:
            connection.execute(
                text(
                    "INSERT INTO batch_chunks (job_id, number, first, last, status, attempts)"
                    " VALUES ('00000000-0000-0000-0000-000000000001', :n, :f, :l, 'pending', 0)"
                ),
                {"n": number, "f": first, "l": last},
            )
        for position, (item_id, body) in enumerate(
            [("a", "object detection"), ("b", 'text, "quoted"'), ("c", "kubernetes ünïcode")]
        ):
            connection.execute(
                text(
                    "INSERT INTO batch_items (job_id, position, item_id, text)"
                    " VALUES ('00000000-0000-0000-0000-000000000001', :p, :i, :t)"
                ),
                {"p": position, "i": item_id, "t": body},
            )
    upgrade_from.dispose()

    registry = Registry.open(database_url, tmp_path / "store", upgrade=True)
    try:
        jobs = BatchJobs(registry)
        claims = [jobs.claim("worker"), jobs.claim("worker")]
        assert [c.items for c in claims] == [
            [("a", "object detection"), ("b", 'text, "quoted"')],
            [("c", "kubernetes ünïcode")],
        ]
    finally:
        registry.engine.dispose()


def test_results_keep_through_0004_which_drops_only_their_key_to_the_job(
    database_url, tmp_path, trained_model
):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    jobs = BatchJobs(registry)
    job, _ = jobs.create(MODEL, [("a", "object detection on drones"), ("b", "bert for legal text")])
    artifacts = registry.load(MODEL, 1)
    claim = jobs.claim("worker")
    assert jobs.complete(
        claim,
        ["computer-vision", "natural-language-processing"],
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]],
        artifacts.labels,
    )
    stored = jobs.results(job.id, limit=100)[0]
    registry.engine.dispose()

    def keys(engine: Engine) -> list[list[str]]:
        return [key["referred_columns"] for key in inspect(engine).get_foreign_keys("batch_results")]

    engine = create_engine(database_url)
    try:
        assert keys(engine) == []  # at head
        downgrade_to(engine, "0003")
        assert keys(engine) == [["id"]]
        upgrade(engine)
        assert keys(engine) == []
        assert inspect(engine).get_indexes("batch_results")[0]["column_names"] == ["job_id", "position"]
    finally:
        engine.dispose()
    registry = Registry.open(database_url, tmp_path / "store")
    try:
        assert BatchJobs(registry).results(job.id, limit=100)[0] == stored
    finally:
        registry.engine.dispose()


def test_the_input_of_a_chunk_queued_before_0005_is_worked_after_it(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    jobs = BatchJobs(registry, chunk_size=2)
    job, _ = jobs.create(
        MODEL, [("a", "object detection"), ("b", 'text, "quoted"'), ("c", "kubernetes ünïcode")]
    )
    first = jobs.claim("worker")
    assert jobs.complete(
        first, ["computer-vision", "other"], [[0.7, 0.1, 0.1, 0.1]] * 2, registry.load(MODEL, 1).labels
    )
    registry.engine.dispose()
    engine = create_engine(database_url)
    try:
        downgrade_to(engine, "0004")  # the items back in their chunks' rows: the done chunk's are gone
        with engine.connect() as connection:
            chunks = connection.execute(text("SELECT number, items FROM batch_chunks ORDER BY number")).all()
            assert chunks == [(0, "[]"), (1, '[["c","kubernetes \\u00fcn\\u00efcode"]]')]
        upgrade(engine)
    finally:
        engine.dispose()
    registry = Registry.open(database_url, tmp_path / "store")
    try:
        jobs = BatchJobs(registry, chunk_size=2)
        second = jobs.claim("worker")
        assert (second.job_id, second.number, second.items) == (job.id, 1, [("c", "kubernetes ünïcode")])
        assert jobs.claim("worker") is None  # the done chunk is not worked again
    finally:
        registry.engine.dispose()


def test_0006_adds_the_job_token_digest_and_takes_it_away_again(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    jobs = BatchJobs(registry)
    token, digest = new_job_token()
    job, _ = jobs.create(MODEL, [("a", "object detection")], token_sha256=digest)
    assert jobs.holds_token(job.id, token)
    assert not jobs.holds_token(job.id, token + "x")
    registry.engine.dispose()

    def columns(engine: Engine) -> set[str]:
        return {column["name"] for column in inspect(engine).get_columns("batch_jobs")}

    engine = create_engine(database_url)
    try:
        assert "token_sha256" in columns(engine)  # at head
        downgrade_to(engine, "0005")
        assert "token_sha256" not in columns(engine)
        with engine.connect() as connection:  # the job itself is kept
            assert connection.execute(text("SELECT id FROM batch_jobs")).scalars().all() == [job.id]
        upgrade(engine)
        assert "token_sha256" in columns(engine)
    finally:
        engine.dispose()
    registry = Registry.open(database_url, tmp_path / "store")
    try:
        jobs = BatchJobs(registry)
        # The digest went with the downgrade: no token matches; an admin key still cancels the job.
        assert not jobs.holds_token(job.id, token)
        assert jobs.cancel_or_delete(job.id).status == "cancelled"
    finally:
        registry.engine.dispose()


def test_0008_adds_the_artifact_blobs_and_takes_them_away_again(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model, artifacts=DATABASE)
    run_id = registry.get_version(MODEL, 1).run_id
    registry.engine.dispose()

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:  # at head: the run's files are rows
            assert connection.execute(text("SELECT count(*) FROM artifact_blobs")).scalar() == 6
        with pytest.raises(RuntimeError) as refused:  # the blobs would go, the versions would stay
            downgrade_to(engine, "0007")
        assert str(refused.value) == (
            "artifact_blobs holds 6 file(s) of runs that versions point at: downgrading "
            "below 0008 would drop them; move them to a directory store first (models "
            "export/import), or force it with -x force=true"
        )
        assert "artifact_blobs" in inspect(engine).get_table_names()
        downgrade_to(engine, "0007", "force=true")
        assert "artifact_blobs" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert {c["name"] for c in inspect(engine).get_columns("artifact_blobs")} == {
            "run_id",
            "name",
            "sha256",
            "data",
        }
    finally:
        engine.dispose()
    # The blobs went with the downgrade: a host with no cache finds the version's files missing.
    registry = Registry.open(database_url, tmp_path / "elsewhere", artifacts=DATABASE)
    try:
        with pytest.raises(RunNotFound, match=f"run {run_id}: its files are missing"):
            registry.load(MODEL, 1)
    finally:
        registry.engine.dispose()


def test_0007_queues_a_job_for_each_version_training_and_downgrades_to_trainer_pids(
    database_url, tmp_path, trained_model
):
    seeded_registry(database_url, tmp_path / "store", trained_model).engine.dispose()  # 1: ready, at head
    engine = create_engine(database_url)

    def columns(table: str) -> set[str]:
        return {column["name"] for column in inspect(engine).get_columns(table)}

    try:
        assert (
            "trainer_pid" not in columns("model_versions")
            and "training_jobs" in inspect(engine).get_table_names()
        )
        downgrade_to(engine, "0006")
        assert "trainer_pid" in columns("model_versions")
        assert "training_jobs" not in inspect(engine).get_table_names()
        with engine.begin() as connection:  # a version 0006's server was training (by pid) at the upgrade
            connection.execute(
                text(
                    "INSERT INTO model_versions (model_id, version, status, created_at, args, trainer_pid)"
                    " SELECT model_id, 2, 'training', CURRENT_TIMESTAMP, args, 4242 FROM model_versions"
                    " WHERE version = 1"
                )
            )
        upgrade(engine)
        assert "trainer_pid" not in columns("model_versions")
    finally:
        engine.dispose()
    registry = Registry.open(database_url, tmp_path / "store")
    try:
        claim = TrainingJobs(registry).claim("worker")  # a runner now trains it; nobody checks a pid
        assert (claim.model, claim.version, claim.attempts) == (MODEL, 2, 1)
        assert TrainingJobs(registry).claim("worker") is None  # the ready version has no job
    finally:
        registry.engine.dispose()

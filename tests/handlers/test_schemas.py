"""The resource schemas: the package's domain objects in the spec's shapes, times and rounding as served."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from coe_template.batch.records import JobInfo, ResultInfo
from coe_template.registry import AliasChange, ModelInfo, VersionInfo
from handlers.schemas.aliases import alias_schema
from handlers.schemas.batch_predictions import job_schema, result_schema
from handlers.schemas.models import model_schema
from handlers.schemas.versions import version_schema

#: 01:38:35.538 UTC, seen from a zone two hours ahead, with microseconds the API does not serve.
MOMENT = datetime(2026, 11, 25, 3, 38, 35, 538917, tzinfo=timezone(timedelta(hours=2)))


def job(done: int, total: int) -> JobInfo:
    return JobInfo(
        id="0b5b0e43-7c1f-4c38-9d0e-5f0c9a3c2a11",
        status="running",
        model_name="project-tagger",
        model_version=2,
        total_items=total,
        done_items=done,
        created_at=MOMENT,
        started_at=MOMENT,
        finished_at=None,
        error=None,
    )


def test_a_job_is_served_in_the_specs_shape_with_times_in_utc_to_the_millisecond():
    assert job_schema.dump(job(1, 3)) == {
        "id": "0b5b0e43-7c1f-4c38-9d0e-5f0c9a3c2a11",
        "status": "running",
        "model": {"name": "project-tagger", "version": 2},
        "items": {"total": 3, "done": 1},
        "progress": 0.3333,
        "created_at": "2026-11-25T01:38:35.538+00:00",
        "started_at": "2026-11-25T01:38:35.538+00:00",
        "finished_at": None,
        "expires_at": None,
        "error": None,
    }


def test_a_finished_jobs_expiry_is_served_like_every_time():
    from dataclasses import replace

    finished = replace(
        job(3, 3), status="succeeded", finished_at=MOMENT, expires_at=MOMENT + timedelta(days=7)
    )
    served = job_schema.dump(finished)
    assert (served["finished_at"], served["expires_at"]) == (
        "2026-11-25T01:38:35.538+00:00",
        "2026-12-02T01:38:35.538+00:00",
    )


def test_progress_is_exact_in_the_package_and_rounded_to_four_digits_when_served():
    assert job(2, 3).progress == 2 / 3
    assert [
        job_schema.dump(job(done, total))["progress"]
        for done, total in ((0, 7), (2, 3), (99_999, 100_000), (7, 7), (0, 0))
    ] == [0.0, 0.6667, 1.0, 1.0, 1.0]


def test_a_result_is_served_under_its_items_id():
    result = ResultInfo(
        item_id="p-1", predicted_tag="mlops", probabilities={"mlops": 0.75, "other": 0.25}, model_version=2
    )
    assert result_schema.dump(result) == {
        "id": "p-1",
        "predicted_tag": "mlops",
        "probabilities": {"mlops": 0.75, "other": 0.25},
        "model_version": 2,
        "prediction_id": None,  # the ledger kept none for it
    }


def test_a_version_a_model_and_an_alias_are_served_in_the_specs_shapes():
    version = VersionInfo(
        model="project-tagger",
        version=2,
        status="training",
        aliases=("staging",),
        created_at=MOMENT,
        finished_at=None,
        args={"C": 3.0},
        dataset=None,
        performance=None,
        artifacts=None,
        run_id=None,
        error=None,
    )
    assert version_schema.dump(version) == {
        "model": "project-tagger",
        "version": 2,
        "status": "training",
        "aliases": ["staging"],
        "created_at": "2026-11-25T01:38:35.538+00:00",
        "finished_at": None,
        "args": {"C": 3.0},
        "dataset": None,
        "performance": None,
        "artifacts": None,
        "run_id": None,
        "error": None,
    }
    model = ModelInfo(
        name="project-tagger",
        description="Tags projects.",
        created_at=MOMENT,
        latest_version=None,
        version_count=0,
        aliases={},
    )
    assert model_schema.dump(model) == {
        "name": "project-tagger",
        "description": "Tags projects.",
        "created_at": "2026-11-25T01:38:35.538+00:00",
        "latest_version": None,
        "version_count": 0,
        "aliases": {},
    }
    assert alias_schema.dump(AliasChange("production", 2)) == {"alias": "production", "version": 2}

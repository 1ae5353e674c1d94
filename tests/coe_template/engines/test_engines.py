"""Ray Data and Spark in local mode, one session each for the whole module (2 CPUs).

Every test runs on both engines: the output equals the API's answers, the version is the one
resolved when the job started, bad rows keep their place with a status, and changed bytes are
refused on the executors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coe_template.cli import main
from coe_template.registry import PRODUCTION, Registry
from tests.coe_template.engines.conftest import (
    NO_EXTRAS,
    api_answers,
    assert_bad_rows,
    registry_on,
    rows_by_id,
)
from tests.conftest import MODEL

pq = pytest.importorskip("pyarrow.parquet", reason=NO_EXTRAS)
from coe_template.engines import job  # noqa: E402  (needs pyarrow)
from coe_template.engines.table import METADATA_KEY  # noqa: E402


def _ray() -> Iterator[str]:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")
    pytest.importorskip("ray.data", reason="the ray extra is not installed: pip install -e '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield "ray"
    finally:
        ray.shutdown()


def _spark() -> Iterator[str]:
    pytest.importorskip("pyspark", reason="the spark extra is not installed: pip install -e '.[spark]'")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (apt-get install default-jre-headless)")
    from pyspark.sql import SparkSession

    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        yield "spark"
    finally:
        spark.stop()
        if previous is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = previous


@pytest.fixture(scope="module", params=["ray", "spark"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine's local session, started once and shared by every test that runs on it."""
    yield from (_ray() if request.param == "ray" else _spark())


def run(engine: str, planned: job.Plan) -> dict[str, Any]:
    from coe_template.engines import on_ray, on_spark

    (on_ray.run if engine == "ray" else on_spark.run)(planned)
    return job.finish(planned, engine)


def plan(registry: Registry, source: Path, output: Path, **options: Any) -> job.Plan:
    fmt = job.format_of(str(source), None)
    return job.plan(
        registry,
        MODEL,
        version=options.get("version"),
        alias=PRODUCTION,
        source=job.Source(str(source), fmt, "text", "id"),
        output=str(output),
        output_format="parquet",
    )


def test_the_command_gives_the_apis_answers(
    engine, model_store, bundled_parquet, bundled_rows, client, tmp_path
):
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        main,
        ["--store", str(model_store), "batch-predict", "--engine", engine]
        + ["--input", str(bundled_parquet), "--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    answers = api_answers(client, [text for _, text in bundled_rows])
    got = rows_by_id(output)
    assert len(got) == len(bundled_rows)
    for (item_id, _), answer in zip(bundled_rows, answers, strict=True):
        row = got[item_id]
        probabilities = {
            k.removeprefix("probability_"): v for k, v in row.items() if k.startswith("probability_")
        }
        # Bit for bit: the floats as the API's JSON gives them, compared with ==.
        assert (row["status"], row["tag"], probabilities, row["model"], row["version"]) == (
            "ok",
            answer["predicted_tag"],
            answer["probabilities"],
            MODEL,
            1,
        )
    # The output names the version and its digests: in the manifest and the Parquet key-value metadata.
    registry = registry_on(model_store)
    try:
        recorded = registry.get_version(MODEL, 1)
    finally:
        registry.engine.dispose()
    manifest = json.loads((output / job.MANIFEST).read_text())
    assert {
        k: manifest[k]
        for k in ("model", "version", "alias", "run_id", "digests", "rows", "statuses", "engine")
    } == {
        "model": MODEL,
        "version": 1,
        "alias": PRODUCTION,
        "run_id": recorded.run_id,
        "digests": recorded.artifacts,
        "rows": len(bundled_rows),
        "statuses": {"ok": len(bundled_rows)},
        "engine": engine,
    }
    assert manifest["started_at"] < manifest["finished_at"]
    metadata = pq.read_schema(output / job.COMMON_METADATA).metadata
    assert json.loads(metadata[METADATA_KEY.encode()]) == manifest


def test_a_promotion_during_the_job_does_not_change_its_version(
    engine, two_versions, bundled_parquet, tmp_path
):
    planned = plan(two_versions, bundled_parquet, tmp_path / "out.parquet")  # production: version 1
    two_versions.set_alias(MODEL, PRODUCTION, 2)
    try:
        manifest = run(engine, planned)
    finally:
        two_versions.set_alias(MODEL, PRODUCTION, 1)
    assert {row["version"] for row in rows_by_id(tmp_path / "out.parquet").values()} == {1}
    assert (manifest["version"], manifest["run_id"]) == (1, two_versions.get_version(MODEL, 1).run_id)


def test_bad_rows_keep_their_place_with_a_status(engine, two_versions, bad_csv, tmp_path):
    manifest = run(engine, plan(two_versions, bad_csv, tmp_path / "out.parquet"))
    assert_bad_rows(tmp_path / "out.parquet")
    assert manifest["statuses"] == {"duplicate id": 2, "no id": 1, "no text": 2, "not utf-8": 1, "ok": 3}


def test_changed_bytes_are_refused_on_the_executors(engine, two_versions, bundled_parquet, tmp_path):
    planned = plan(two_versions, bundled_parquet, tmp_path / "out.parquet")
    files = dict(planned.package.files)
    files["model.skops"] = files["model.skops"][:-1] + bytes([files["model.skops"][-1] ^ 1])
    tampered = dataclasses.replace(planned, package=dataclasses.replace(planned.package, files=files))
    with pytest.raises(Exception, match=r"model\.skops does not match its recorded sha256") as raised:
        run(engine, tampered)
    assert "refusing to load it" in str(raised.value)
    assert not list((tmp_path / "out.parquet").glob("*.parquet"))


def test_a_missing_column_is_refused_before_any_work(two_versions, bundled_parquet, tmp_path):
    with pytest.raises(job.JobInputError) as raised:
        job.Source(str(bundled_parquet), "parquet", "description", "id").ids()
    assert str(raised.value) == (
        f"{bundled_parquet} has no column 'description' (its columns: id, text); "
        "name them with --text-column and --id-column"
    )

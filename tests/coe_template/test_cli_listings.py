"""``coe-template models list|versions`` and ``coe-template batch status|results``: what a listing prints.

Every listing is a table by default (a header, columns two spaces apart) and JSON with ``--json``;
a batch job's results stream as CSV or JSON lines. Each output is pinned whole, its run-dependent
values (times, f1, probabilities) read back from the registry the command used.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from coe_template.batch.jobs import BatchJobs
from coe_template.registry import PRODUCTION
from tests.coe_template.test_cli import (  # noqa: F401 - fixtures of the CLI's suite
    NAME,
    TEXTS,
    clean_environment,
    cli,
    module_data,
    registry,
    store,
    two_versions,
    two_versions_store,
    unsure_args,
)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def iso(moment) -> str:
    return moment.isoformat(timespec="milliseconds")


# --- models list / versions -----------------------------------------------------------------------


def test_models_list_is_a_table_of_each_model_with_its_aliases(cli, two_versions, registry):
    assert cli("models", "promote", NAME, "2", "--alias", "staging").exit_code == 0
    [model] = registry.list_models()
    assert ok(cli("models", "list")) == (
        "NAME            VERSIONS  LATEST  ALIASES                 CREATED\n"
        f"project-tagger  2         2       production=1,staging=2  {iso(model.created_at)}\n"
    )


def test_models_list_json_is_each_model_as_the_registry_records_it(cli, two_versions, registry):
    assert cli("models", "promote", NAME, "2", "--alias", "staging").exit_code == 0
    [model] = registry.list_models()
    assert json.loads(ok(cli("models", "list", "--json"))) == [
        {
            "name": NAME,
            "description": model.description,
            "created_at": iso(model.created_at),
            "latest_version": 2,
            "version_count": 2,
            "aliases": {PRODUCTION: 1, "staging": 2},
        }
    ]


def test_models_list_of_an_empty_store(cli):
    assert ok(cli("models", "list")) == "NAME  VERSIONS  LATEST  ALIASES  CREATED\n"
    assert json.loads(ok(cli("models", "list", "--json"))) == []


def versions_table(registry, status: str | None = None) -> str:
    found, _ = registry.list_versions(NAME, status=status, limit=100)
    rows = [
        ("VERSION", "STATUS", "ALIASES", "F1", "CREATED"),
        *(
            (
                str(v.version),
                v.status,
                ",".join(v.aliases) or "-",
                f"{v.performance['overall']['f1']:.3f}",
                iso(v.created_at),
            )
            for v in found
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def test_models_versions_is_a_table_of_status_aliases_and_f1(cli, two_versions, registry):
    output = ok(cli("models", "versions", NAME))
    assert output == versions_table(registry)
    assert [line.split()[:3] for line in output.splitlines()] == [
        ["VERSION", "STATUS", "ALIASES"],
        ["1", "ready", PRODUCTION],
        ["2", "ready", "-"],
    ]


def test_models_versions_filters_by_status(cli, two_versions, registry):
    assert cli("models", "promote", NAME, "2", "--reason", "archive 1").exit_code == 0
    assert cli("models", "archive", NAME, "1").exit_code == 0
    assert ok(cli("models", "versions", NAME, "--status", "archived")) == versions_table(registry, "archived")
    assert ok(cli("models", "versions", NAME, "--status", "ready")) == versions_table(registry, "ready")
    assert (
        ok(cli("models", "versions", NAME, "--status", "failed")) == "VERSION  STATUS  ALIASES  F1  CREATED\n"
    )


def test_models_versions_json_is_each_version_as_the_registry_records_it(cli, two_versions, registry):
    found, _ = registry.list_versions(NAME, limit=100)
    printed = json.loads(ok(cli("models", "versions", NAME, "--json")))
    assert printed == [
        {
            "model": NAME,
            "version": v.version,
            "status": "ready",
            "aliases": list(v.aliases),
            "created_at": iso(v.created_at),
            "finished_at": iso(v.finished_at),
            "args": v.args,
            "dataset": v.dataset,
            "performance": v.performance,
            "artifacts": v.artifacts,
            "run_id": run_id,
            "error": None,
        }
        for v, run_id in zip(found, two_versions, strict=True)
    ]


# --- batch status / results -----------------------------------------------------------------------


def batch_job(cli, tmp_path) -> str:
    rows = tmp_path / "projects.csv"
    rows.write_text("id,text\n" + "".join(f"p{n},{text}\n" for n, text in enumerate(TEXTS)), encoding="utf-8")
    return json.loads(ok(cli("batch-predict", str(rows))))["id"]


def test_batch_status_is_a_table_and_json_is_the_apis_shape(cli, two_versions, registry, tmp_path):
    job_id = batch_job(cli, tmp_path)
    job = BatchJobs(registry).get(job_id)
    assert ok(cli("batch", "status", job_id)) == (
        f"ID{' ' * 36}STATUS     DONE  TOTAL  MODEL             CREATED{' ' * 24}FINISHED\n"
        f"{job_id}  succeeded  2     2      project-tagger/1  {iso(job.created_at)}  {iso(job.finished_at)}\n"
    )
    assert json.loads(ok(cli("batch", "status", job_id, "--json"))) == {
        "id": job_id,
        "status": "succeeded",
        "model": {"name": NAME, "version": 1},
        "items": {"total": 2, "done": 2},
        "progress": 1.0,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "expires_at": iso(job.finished_at + timedelta(days=7)),  # COE_BATCH_RETENTION_DAYS
        "error": None,
    }


def test_batch_results_stream_as_csv_with_a_column_per_tag(cli, two_versions, registry, tmp_path):
    job_id = batch_job(cli, tmp_path)
    stored, _ = BatchJobs(registry).results(job_id, limit=1000)
    tags = sorted(stored[0].probabilities)
    assert tags == ["computer-vision", "mlops", "natural-language-processing", "other"]
    rows = list(csv.reader(io.StringIO(ok(cli("batch", "results", job_id)))))
    assert rows == [
        ["id", "predicted_tag", "model_version", *(f"probability_{tag}" for tag in tags)],
        *([r.item_id, r.predicted_tag, "1", *(repr(r.probabilities[t]) for t in tags)] for r in stored),
    ]
    assert [row[:3] for row in rows[1:]] == [
        ["p0", "computer-vision", "1"],
        ["p1", "natural-language-processing", "1"],
    ]


def test_batch_results_as_json_lines_are_the_apis_results(cli, two_versions, registry, tmp_path):
    job_id = batch_job(cli, tmp_path)
    stored, _ = BatchJobs(registry).results(job_id, limit=1000)
    lines = ok(cli("batch", "results", job_id, "--format", "jsonl")).splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": r.item_id,
            "predicted_tag": r.predicted_tag,
            "probabilities": r.probabilities,
            "model_version": 1,
        }
        for r in stored
    ]
    assert [json.loads(line)["id"] for line in lines] == ["p0", "p1"]


def test_an_unknown_batch_job_is_named(cli, two_versions):
    for command in (["batch", "status", "nope"], ["batch", "results", "nope"]):
        result = cli(*command)
        assert (result.exit_code, result.stdout, result.stderr) == (
            1,
            "",
            "Error: batch job 'nope' not found\n",
        )

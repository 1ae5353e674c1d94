"""``coe-template batch``: a batch job's status and its results, read from the registry's database.

The same jobs as ``POST /batch-predictions`` and ``coe-template batch-predict`` make, read through
the same facade (:class:`coe_template.batch.jobs.BatchJobs`): a job made over HTTP can be read here
without a key, by whoever can reach the database, as an operator or a cron job would.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator

import click

from coe_template.batch.jobs import BatchJobs
from coe_template.batch.records import ResultInfo
from coe_template.bootstrap import batch_jobs
from coe_template.cli.context import Context, echo_json, echo_table, fail_clearly, json_option, pass_context
from coe_template.shapes import batch_job

#: Results read per query: the output is written as they come, never held whole.
PAGE_SIZE = 1000


@click.group()
def batch() -> None:
    """Read batch prediction jobs: a job's status, its results."""


@batch.command()
@click.argument("job_id")
@json_option
@pass_context
@fail_clearly
def status(context: Context, job_id: str, as_json: bool) -> None:
    """The status of batch job JOB_ID: a table, or with --json the job as GET /batch-predictions/{id} serves it."""
    job = batch_job(batch_jobs(context.settings, context.registry).get(job_id))
    if as_json:
        echo_json(job)
        return
    echo_table(
        ("ID", "STATUS", "DONE", "TOTAL", "MODEL", "CREATED", "FINISHED"),
        [
            (
                job["id"],
                job["status"],
                job["items"]["done"],
                job["items"]["total"],
                f"{job['model']['name']}/{job['model']['version']}",
                job["created_at"],
                job["finished_at"],
            )
        ],
    )
    if job["error"]:
        click.echo(f"error: {job['error']}")


@batch.command()
@click.argument("job_id")
@click.option(
    "--format",
    "output",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV (a column per tag's probability) or JSON lines (each result as the API serves it).",
)
@pass_context
@fail_clearly
def results(context: Context, job_id: str, output: str) -> None:
    """The stored results of batch job JOB_ID in input order, streamed to standard output.

    A job still running gives the results stored so far; `batch status` says how many there are.
    """
    jobs = batch_jobs(context.settings, context.registry)
    jobs.get(job_id)  # an unknown job is refused before anything is written
    found = _all_results(jobs, job_id)
    if output == "jsonl":
        for result in found:
            click.echo(
                json.dumps(
                    {
                        "id": result.item_id,
                        "predicted_tag": result.predicted_tag,
                        "probabilities": result.probabilities,
                        "model_version": result.model_version,
                    },
                    separators=(",", ":"),
                )
            )
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    tags: list[str] | None = None
    for result in found:
        if tags is None:  # one job, one version: every result has the same tags
            tags = sorted(result.probabilities)
            writer.writerow(["id", "predicted_tag", "model_version", *(f"probability_{tag}" for tag in tags)])
        writer.writerow(
            [
                result.item_id,
                result.predicted_tag,
                result.model_version,
                *(result.probabilities[t] for t in tags),
            ]
        )
    if tags is None:
        writer.writerow(["id", "predicted_tag", "model_version"])


def _all_results(jobs: BatchJobs, job_id: str) -> Iterator[ResultInfo]:
    after: int | None = -1
    while after is not None:
        page, after = jobs.results(job_id, limit=PAGE_SIZE, after=after)
        yield from page

"""The ``coe-template`` command: train, evaluate, predict, manage model versions, work batch jobs.

The command's context and helpers are in :mod:`coe_template.cli.context`; ``models`` in :mod:`coe_template.cli.models`;
``batch`` (a job's status and results) in :mod:`coe_template.cli.batch`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import click
from sqlalchemy import Engine

from coe_template import observability
from coe_template.batch.items import NO_TEXT, blank, read_csv
from coe_template.batch.runner import GRACE_SECONDS
from coe_template.bootstrap import (
    KINDS,
    UNOBSERVED,
    Observers,
    batch_jobs,
    batch_runner,
    configure_logging,
    training_jobs,
)
from coe_template.cli.batch import batch
from coe_template.cli.context import Context, echo_json, fail_clearly, model_option, pass_context
from coe_template.cli.events import events
from coe_template.cli.models import models
from coe_template.engines.command import batch_predict_command
from coe_template.model.args import load_args
from coe_template.model.data import load_dataset
from coe_template.model.evaluate import evaluate as score
from coe_template.model.predict import predict as predict_texts
from coe_template.model.train import train as train_model
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.db import check_schema, head_revision, make_engine
from coe_template.registry.db import upgrade as upgrade_schema
from coe_template.shapes import batch_job
from coe_template.worker import Stopping
from coe_template.worker import run as run_worker
from config.settings import Settings

log = logging.getLogger(__name__)

_STEPS = ("splitting data", "fitting the pipeline", "choosing the threshold", "evaluating on the test split")


@click.group()
@click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model store directory [default: $COE_MODEL_STORE or ./model-store].",
)
@click.pass_context
def main(ctx: click.Context, store: Path | None) -> None:
    """Train, evaluate and use the project tagger; manage its versions."""
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = Context(settings if store is None else replace(settings, model_store=store))
    ctx.call_on_close(ctx.obj.close)
    acting = observability.actor.set("cli")  # the registry's history names who changed it
    ctx.call_on_close(lambda: observability.actor.reset(acting))


@main.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV with title, description and tag columns [default: the bundled dataset].",
)
@click.option(
    "--args",
    "args_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of training arguments [default: config/args.json].",
)
@click.option("--if-missing", is_flag=True, help="Do nothing if the model already has a production version.")
@click.option(
    "--queue",
    is_flag=True,
    help="Only record the version and its training job, for a server or `coe-template worker` to "
    "train on its COE_TRAINING_DATA; print the version number and return at once.",
)
@model_option
@pass_context
@fail_clearly
def train(
    context: Context,
    data_path: Path | None,
    args_path: Path | None,
    if_missing: bool,
    queue: bool,
    name: str | None,
) -> None:
    """Train a model and register it as a new version (production if it is the first)."""
    settings, registry = context.settings, context.registry
    if queue and data_path is not None:
        raise click.UsageError(
            "--queue trains on the data the worker that claims it is configured with "
            "(COE_TRAINING_DATA): --data cannot go with it"
        )
    name = name or settings.model_name
    registry.ensure_model(name, "Tags machine-learning projects from their title and description.")
    aliases = registry.list_aliases(name)
    if if_missing and PRODUCTION in aliases:
        click.echo(f"{name} already has a production version ({aliases[PRODUCTION]}); not training")
        return
    args = load_args(args_path or settings.training_args)
    if queue:
        version = training_jobs(settings, registry).create(name, args)
        click.echo(version.version)
        return
    source = data_path or settings.training_data_path
    # What `make serve` is waiting on, the first time: said before the work, on stderr (stdout is the summary).
    click.echo(
        f"{name} has no {PRODUCTION} version: training one on {source}"
        if PRODUCTION not in aliases
        else f"training a new version of {name} on {source}",
        err=True,
    )
    dataset = load_dataset(source)
    with click.progressbar(length=len(_STEPS), label="training", file=sys.stderr) as bar:

        def progress(step: str) -> None:
            bar.label = step
            bar.update(1)

        trained = train_model(dataset, args, progress)
    version = registry.register(name, trained)
    if PRODUCTION not in aliases:
        registry.set_alias(name, PRODUCTION, version.version)
    click.echo(
        f"{name} version {version.version} (run {version.run_id}): trained on "
        f"{len(dataset)} rows, threshold {trained.threshold}"
    )
    echo_json(
        {
            "model": name,
            "version": version.version,
            "run_id": version.run_id,
            "test": trained.performance["overall"],
        }
    )


@main.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labeled CSV to score the version on.",
)
@click.option("--version", type=click.IntRange(min=1), help="Version to evaluate [default: production].")
@model_option
@pass_context
@fail_clearly
def evaluate(context: Context, data_path: Path, version: int | None, name: str | None) -> None:
    """Score a version on a labeled CSV it was not trained on."""
    artifacts = context.load(name or context.settings.model_name, version)
    dataset = load_dataset(data_path)
    predicted = [p["predicted_tag"] for p in predict_texts(dataset.texts, artifacts)]
    echo_json(
        {
            "run_id": artifacts.run_id,
            "data": str(data_path),
            "performance": score(dataset.texts, dataset.tags, predicted, artifacts.labels),
        }
    )


@main.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--version", type=click.IntRange(min=1), help="Version to predict with [default: production].")
@model_option
@pass_context
@fail_clearly
def predict(context: Context, texts: tuple[str, ...], version: int | None, name: str | None) -> None:
    """Tag each TEXT (a project's title and description)."""
    blanks = [f"texts[{n}] {NO_TEXT}" for n, text in enumerate(texts) if blank(text)]
    if blanks:
        raise click.BadParameter("; ".join(blanks), param_hint="TEXTS")
    echo_json(predict_texts(list(texts), context.load(name or context.settings.model_name, version)))


@click.command("batch-predict")  # registered below, with --engine ray|spark
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model-version", type=click.IntRange(min=1), help="Version to predict with [default: production]."
)
@model_option
@pass_context
@fail_clearly
def batch_predict(context: Context, input_csv: Path, model_version: int | None, name: str | None) -> None:
    """Predict every row of INPUT_CSV (id, text or title + description) into the database.

    The same jobs and results as POST /batch-predictions: read them back through the API.
    """
    settings = context.settings
    jobs = batch_jobs(settings, context.registry)
    job, _ = jobs.create(name or settings.model_name, read_csv(input_csv.read_bytes()), version=model_version)
    loaded = functools.lru_cache(maxsize=4)(context.registry.load)
    runner = batch_runner(jobs, loaded)
    click.echo(
        f"job {job.id}: {job.total_items} items with {job.model_name} version {job.model_version}", err=True
    )
    with click.progressbar(length=job.total_items, label="predicting", file=sys.stderr) as bar:
        runner.run_until_idle(lambda claim: bar.update(len(claim.items)))
    echo_json(batch_job(jobs.get(job.id)))  # the shape GET /batch-predictions/{id} serves


main.add_command(batch_predict_command(batch_predict))


def _serve_worker_metrics(registry: Registry, addr: str, port: int) -> Observers:
    """Serve this worker's metrics over HTTP; return the observers that count into them.

    The server's own metrics and hooks (:mod:`coe_template.observability.metrics`), in this process's registry:
    batch chunks and items done, training tries, database errors, plus the process's CPU and
    memory. A ``PROMETHEUS_MULTIPROC_DIR`` is gunicorn's (its workers' files, summed by its
    scrape): the worker does not write there, or its counts would be reported twice.
    """
    given = [os.environ.pop(name, None) for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")]
    if any(given):
        log.info(
            "worker metrics: PROMETHEUS_MULTIPROC_DIR ignored (it is for gunicorn's workers); "
            "this worker's counts are served on its own port"
        )
    # Imported only here, once that variable is gone: prometheus_client reads it when imported.
    from prometheus_client import start_http_server

    from coe_template.observability import metrics

    metrics.count_database_errors(registry.engine)
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        raise click.ClickException(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from None
    return Observers(
        batch=metrics.batch_chunk,
        training=metrics.training_job,
        purged=metrics.batch_purge,
        expired=metrics.expired,
    )


@main.command()
@click.option(
    "--work",
    "kinds",
    multiple=True,
    type=click.Choice(sorted(KINDS)),
    default=tuple(sorted(KINDS)),
    show_default=True,
    help="Kind of leased job; repeat for several.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=GRACE_SECONDS,
    show_default=True,
    help="Seconds a stopping worker may take to finish the chunk in hand before giving it back.",
)
@click.option(
    "--poll",
    "poll_seconds",
    type=click.FloatRange(min=0.01),
    default=0.5,
    show_default=True,
    help="Seconds between looks for new work while idle.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on this port; 0 for none [default: $COE_WORKER_METRICS_PORT, "
    "else none]. Address: $COE_WORKER_METRICS_ADDR, else 0.0.0.0.",
)
@pass_context
@fail_clearly
def worker(
    context: Context, kinds: tuple[str, ...], grace: float, poll_seconds: float, metrics_port: int | None
) -> None:
    """Work batch and training jobs until SIGTERM or SIGINT, beside servers run with COE_BATCH_IN_SERVER=false
    (or COE_TRAINING_IN_SERVER=false).

    On SIGTERM the chunk in hand is finished within --grace seconds or given back, pending
    again at once for another worker; the process then exits 0. Run as many as the cores allow.
    With --metrics-port, it serves its batch chunks and items done, its training jobs' tries and its
    database errors to Prometheus (GET /metrics on that port), the counts the server's /metrics cannot see.
    """
    settings = context.settings
    configure_logging(settings)
    stopping = Stopping()
    stopping.install()
    registry = context.registry
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    observers = _serve_worker_metrics(registry, settings.worker_metrics_addr, port) if port else UNOBSERVED
    works = [KINDS[kind](settings, registry, poll_seconds, observers) for kind in dict.fromkeys(kinds)]
    served = f"metrics on {settings.worker_metrics_addr}:{port}" if port else "no metrics endpoint"
    click.echo(
        f"worker: {', '.join(kinds)} from {registry.engine.url.render_as_string(hide_password=True)}; "
        f"leases {settings.batch_lease_seconds:g} s (batch), {settings.training_lease_seconds:g} s "
        f"(training); {served}",
        err=True,
    )
    run_worker(works, stopping, grace)


@main.group()
def db() -> None:
    """The registry's database schema: the only commands that change it."""


def _engine(context: Context) -> Engine:
    settings = context.settings
    settings.model_store.mkdir(parents=True, exist_ok=True)  # where the default SQLite file lives
    return make_engine(settings.db_url, settings.database_limits)


@db.command("upgrade")
@pass_context
@fail_clearly
def db_upgrade(context: Context) -> None:
    """Bring the schema to the newest revision (run once per release, before servers and workers start).

    Safe to run again, and from several places at once: on PostgreSQL, upgrades take turns.
    """
    engine = _engine(context)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    click.echo(
        f"{where}: schema already at revision {after}"
        if before == after
        else f"{where}: schema upgraded from revision {before or '(empty)'} to {after}"
    )


@db.command("check")
@pass_context
@fail_clearly
def db_check(context: Context) -> None:
    """Exit 0 if the schema is current, else 1 saying what to run (e.g. an init container's check)."""
    engine = _engine(context)
    try:
        check_schema(engine)
    finally:
        engine.dispose()
    click.echo(
        f"{engine.url.render_as_string(hide_password=True)}: schema at revision {head_revision()}, current"
    )


main.add_command(models)
main.add_command(batch)
main.add_command(events)


if __name__ == "__main__":
    main()

"""``coe-template batch-predict``: into the database (the API's batch jobs), or on Ray or Spark.

``--engine database`` (the default) is the command as it was: INPUT_CSV becomes a batch job
read back through the API. ``--engine ray|spark`` reads ``--input`` where it is and writes
``--output`` there too (Parquet, CSV or JSON lines; any filesystem pyarrow reads), with the
version resolved once, at the start (see :mod:`coe_template.engines.job`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import click

from coe_template.errors import CoeError
from coe_template.registry import PRODUCTION, Registry

ENGINES = ("database", "ray", "spark")


class _Context(Protocol):
    """What the command needs of :class:`coe_template.cli.context.Context` (not imported: cli imports this module)."""

    @property
    def registry(self) -> Registry: ...

    settings: Any


def batch_predict_command(database: click.Command) -> click.Command:
    """The ``batch-predict`` command: ``database`` (the CLI's own) for ``--engine database``, else Ray or Spark."""

    @click.command("batch-predict")
    @click.argument("input_csv", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="database",
        show_default=True,
        help="database: a batch job the API serves; ray, spark: --input to --output on that engine.",
    )
    @click.option("--input", "input_path", help="ray, spark: a file or directory, local or a URI (s3://...).")
    @click.option("--output", "output_path", help="ray, spark: a directory that does not exist yet.")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["parquet", "csv", "json"]),
        help="Input and output format [default: from each path's extension].",
    )
    @click.option(
        "--version",
        "--model-version",
        "version",
        type=click.IntRange(min=1),
        help="Version to predict with [default: --alias].",
    )
    @click.option(
        "--alias", default=PRODUCTION, show_default=True, help="Resolved once, when the job starts."
    )
    @click.option("--model", "name", default=None, help="Model name [default: $COE_MODEL_NAME].")
    @click.option("--text-column", default="text", show_default=True)
    @click.option("--id-column", default="id", show_default=True)
    @click.option(
        "--address", help="ray: a cluster (ray://host:10001) [default: $RAY_ADDRESS, else a local Ray]."
    )
    @click.option("--master", default="local[*]", show_default=True, help="spark: the master URL.")
    @click.pass_context
    def batch_predict(
        ctx: click.Context,
        input_csv: Path | None,
        engine: str,
        input_path: str | None,
        output_path: str | None,
        fmt: str | None,
        version: int | None,
        alias: str,
        name: str | None,
        text_column: str,
        id_column: str,
        address: str | None,
        master: str,
    ) -> None:
        """Predict every row of INPUT_CSV into the database (--engine database), or of --input into
        --output on Ray or Spark: one output row per input row, with a status."""
        if engine == "database":
            given = input_csv or (Path(input_path) if input_path else None)
            if given is None or output_path is not None:
                raise click.UsageError("--engine database takes INPUT_CSV (and no --output)")
            ctx.invoke(database, input_csv=given, model_version=version, name=name)
            return
        if input_path is None or output_path is None or input_csv is not None:
            raise click.UsageError(f"--engine {engine} takes --input and --output (no INPUT_CSV)")
        context: _Context = ctx.find_root().obj
        try:
            manifest = _run(
                context,
                engine,
                input_path,
                output_path,
                fmt,
                version,
                alias,
                name,
                text_column,
                id_column,
                address,
                master,
            )
        except CoeError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"{manifest['rows']} rows with {manifest['model']} version {manifest['version']}: "
            f"{manifest['statuses']} -> {output_path}",
            err=True,
        )

    return batch_predict


def _run(
    context: _Context,
    engine: str,
    input_path: str,
    output_path: str,
    fmt: str | None,
    version: int | None,
    alias: str,
    name: str | None,
    text_column: str,
    id_column: str,
    address: str | None,
    master: str,
) -> dict[str, Any]:
    try:
        from coe_template.engines import job, on_ray, on_spark  # the extra's libraries: pyarrow

        if engine == "ray":
            import ray.data  # noqa: F401
        else:
            import pyspark  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"--engine {engine} needs its extra ({exc.name} is missing): pip install 'coe-template[{engine}]'"
        ) from None
    source = job.Source(job.engine_path(input_path), job.format_of(input_path, fmt), text_column, id_column)
    planned = job.plan(
        context.registry,
        name or context.settings.model_name,
        version=version,
        alias=alias,
        source=source,
        output=job.engine_path(output_path),
        output_format=job.format_of(output_path, fmt),
    )
    if engine == "ray":
        on_ray.run(planned, address)
    else:
        on_spark.run(planned, master)
    return job.finish(planned, engine)

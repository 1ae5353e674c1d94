"""Ray Data: a callable class for ``Dataset.map_batches``, and a job run on a local Ray or a cluster."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from coe_template.engines.table import LoadedVersion, VersionPackage, cells, load_package, predict_table

if TYPE_CHECKING:
    import pandas as pd

    from coe_template.engines.job import Plan

#: Rows per batch handed to an actor: large enough that per-call costs vanish, small enough to stream.
BATCH_SIZE = 4096


def _column(batch: pa.Table | pd.DataFrame, name: str) -> list[Any]:
    return cells(batch, name) if isinstance(batch, pa.Table) else batch[name].tolist()


class RayPredictor:
    """``ds.map_batches(RayPredictor, fn_constructor_kwargs={"package": ...}, concurrency=N)``.

    Each actor verifies and loads the version once, in its constructor, from the bytes and
    digests it is given (never from the registry); batches come as Arrow tables or pandas
    frames and go back as Arrow tables of :func:`~coe_template.engines.table.output_schema`.
    """

    def __init__(
        self,
        package: VersionPackage,
        text_column: str = "text",
        id_column: str = "id",
        duplicated: Collection[str] = frozenset(),
        latin1: bool = False,
    ) -> None:
        self.loaded: LoadedVersion = load_package(package)
        self.text_column, self.id_column = text_column, id_column
        self.duplicated, self.latin1 = frozenset(duplicated), latin1

    def __call__(self, batch: pa.Table | pd.DataFrame) -> pa.Table:
        return predict_table(
            self.loaded,
            _column(batch, self.id_column),
            _column(batch, self.text_column),
            self.duplicated,
            self.latin1,
        )


def run(plan: Plan, address: str | None = None) -> None:
    """Predict ``plan``'s input into its output on Ray: the one already initialised in this process,
    else the cluster at ``address`` (or ``$RAY_ADDRESS``), else a local Ray started and stopped here."""
    import ray
    import ray.data

    from coe_template.engines.job import csv_options

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        source = plan.source
        if source.format == "csv":
            read_options, parse_options = csv_options()
            ds = ray.data.read_csv(source.path, read_options=read_options, parse_options=parse_options)
        elif source.format == "json":
            ds = ray.data.read_json(source.path)
        else:
            ds = ray.data.read_parquet(source.path).select_columns([source.id_column, source.text_column])
        # One actor per CPU, each reserving a little less than one, so reading and writing tasks can
        # still be scheduled: with every CPU held by an actor, the read waits for ever.
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        predicted = ds.map_batches(
            RayPredictor,
            fn_constructor_kwargs={
                "package": plan.package,
                "text_column": source.text_column,
                "id_column": source.id_column,
                "duplicated": plan.duplicated,
                "latin1": source.latin1,
            },
            batch_format="pyarrow",
            batch_size=BATCH_SIZE,
            concurrency=(1, cpus),  # more actors as blocks queue up (a small input has few)
            num_cpus=max(cpus - 1, 0.5) / cpus,
        )
        if plan.output_format == "csv":
            predicted.write_csv(plan.output)
        elif plan.output_format == "json":
            predicted.write_json(plan.output)
        else:
            predicted.write_parquet(plan.output)
    finally:
        if started_here:
            ray.shutdown()

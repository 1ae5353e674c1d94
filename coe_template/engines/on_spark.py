"""Spark: a ``mapInArrow`` function that loads the version once per executor process, and a job on any master.

``mapInArrow`` is ``mapInPandas``'s Arrow sibling: the batches stay Arrow record batches both
ways, so a null probability stays null (pandas would make it NaN) and no frame is built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from coe_template.engines.table import (
    LoadedVersion,
    VersionPackage,
    cells,
    load_package,
    output_schema,
    predict_table,
)

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from coe_template.engines.job import Plan

#: The version this executor process loaded, under the fingerprint of the bytes it was given.
_loaded: dict[str, LoadedVersion] = {}


def _load_once(package: VersionPackage) -> LoadedVersion:
    key = package.fingerprint()  # of the bytes held: changed bytes are verified (and refused) afresh
    if key not in _loaded:
        loaded = load_package(package)
        _loaded.clear()
        _loaded[key] = loaded
    return _loaded[key]


def partition_predictor(
    package: VersionPackage,
    text_column: str = "text",
    id_column: str = "id",
    duplicated: Collection[str] = frozenset(),
    latin1: bool = False,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``df.mapInArrow(partition_predictor(package), spark_schema(labels))``: one output row per input row."""
    duplicated = frozenset(duplicated)

    def predict_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        loaded = _load_once(package)
        for batch in batches:
            table = predict_table(
                loaded,
                cells(batch, id_column),
                cells(batch, text_column),
                duplicated,
                latin1,
            )
            yield from table.to_batches()

    return predict_partition


def spark_schema(labels: Collection[str]) -> StructType:
    """:func:`~coe_template.engines.table.output_schema` as Spark's."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    kinds = {pa.string(): StringType(), pa.float64(): DoubleType(), pa.int64(): LongType()}
    return StructType(
        [StructField(field.name, kinds[field.type], field.nullable) for field in output_schema(list(labels))]
    )


def run(plan: Plan, master: str = "local[*]") -> None:
    """Predict ``plan``'s input into its output with the active Spark session, else one on ``master``."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    started_here = spark is None
    if spark is None:
        if master.startswith("local"):  # the executors are this machine's: this interpreter, this venv
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = (
            SparkSession.builder.master(master)
            .appName("coe-template batch-predict")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
    try:
        source = plan.source
        reader = spark.read
        if source.format == "csv":  # ISO-8859-1: every byte one character, re-checked as UTF-8 per row
            reader = reader.options(header=True, multiLine=True, escape='"', encoding="ISO-8859-1")
            df = reader.csv(source.path)
        elif source.format == "json":
            df = reader.json(source.path)
        else:
            df = reader.parquet(source.path)
        df = df.select(f"`{source.id_column}`", f"`{source.text_column}`")
        cores = spark.sparkContext.defaultParallelism
        if df.rdd.getNumPartitions() < cores:  # one small file is one partition: one core would do it all
            df = df.repartition(cores)
        predict = partition_predictor(
            plan.package, source.text_column, source.id_column, plan.duplicated, source.latin1
        )
        writer = df.mapInArrow(predict, spark_schema(plan.labels)).write.mode("errorifexists")
        if plan.output_format == "csv":
            writer.option("header", True).csv(plan.output)
        elif plan.output_format == "json":
            writer.option("ignoreNullFields", False).json(plan.output)
        else:
            writer.parquet(plan.output)
    finally:
        if started_here:
            spark.stop()

"""Texts per second through Ray Data and Spark in local mode, against the bare predictor in one process.

    python bench/engines.py --texts 200000 [--engines ray,spark]

Trains the default model on the bundled data into a temporary registry, writes a Parquet input
of N texts (the bundled texts, cycled, each with its own id), then times:

- ``bare``: :func:`~coe_template.engines.table.predict_table` in this process, 4,096 texts a call
  (the version verified and loaded once, from bytes + digests, as an executor does);
- each engine: the whole ``batch-predict --engine X`` job (plan, a fresh local session of all
  this machine's cores, read, predict, write Parquet, manifest) on 1,000 texts, on N, and on
  1,000 again: the faster 1,000-text job is its fixed start-up cost, near enough (the first one
  also pays for cold caches), and its rate is the difference: (N - 1,000) / (T(N) - start-up).

The crossover is the input size from which an engine's whole job beats the bare predictor:
start-up / (1/bare rate - 1/engine rate), when the engine's rate is the higher one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from coe_template.engines import job  # noqa: E402
from coe_template.engines.table import load_package, predict_table  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset, project_text  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from config.settings import Settings  # noqa: E402

MODEL = "project-tagger"
SMALL = 1_000
BATCH = 4096


def write_input(path: Path, count: int) -> None:
    import csv

    with bundled_dataset_path().open(newline="", encoding="utf-8") as fh:
        texts = [project_text(r["title"], r["description"]) for r in csv.DictReader(fh)]
    pq.write_table(
        pa.table(
            {"id": [f"t-{n}" for n in range(count)], "text": [texts[n % len(texts)] for n in range(count)]}
        ),
        path,
    )


def run_job(registry: Registry, engine: str, source: Path, output: Path) -> float:
    from coe_template.engines import on_ray, on_spark

    started = time.perf_counter()
    planned = job.plan(
        registry,
        MODEL,
        version=None,
        alias=PRODUCTION,
        source=job.Source(str(source), "parquet", "text", "id"),
        output=str(output),
        output_format="parquet",
    )
    (on_ray.run if engine == "ray" else on_spark.run)(planned)
    manifest = job.finish(planned, engine)
    elapsed = time.perf_counter() - started
    assert manifest["rows"] == planned.rows
    return elapsed


def bare(registry: Registry, source: Path) -> tuple[float, int]:
    from coe_template.engines.table import VersionPackage

    table = pq.read_table(source)
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    started = time.perf_counter()
    loaded = load_package(VersionPackage.export(registry, MODEL, 1))
    for start in range(0, len(texts), BATCH):
        predict_table(loaded, ids[start : start + BATCH], texts[start : start + BATCH])
    return time.perf_counter() - started, len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--engines", default="ray,spark")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store"
        registry = Registry.open(Settings(model_store=store).db_url, store, upgrade=True)
        registry.ensure_model(MODEL)
        registry.register(
            MODEL, train(load_dataset(bundled_dataset_path()), load_args(Settings.training_args))
        )
        registry.set_alias(MODEL, PRODUCTION, 1)
        small, large = root / "small.parquet", root / "large.parquet"
        write_input(small, SMALL)
        write_input(large, args.texts)
        seconds, count = bare(registry, large)
        results: dict[str, dict[str, float | None]] = {
            "bare": {"texts_per_s": count / seconds, "startup_s": 0.0}
        }
        print(f"{args.texts:,} texts on {os.cpu_count()} cores")
        print(f"bare predictor, one process: {count / seconds:,.0f} texts/s ({seconds:.1f} s)", flush=True)
        for engine in args.engines.split(","):
            first = run_job(registry, engine, small, root / f"{engine}-small")
            total = run_job(registry, engine, large, root / f"{engine}-large")
            startup = min(first, run_job(registry, engine, small, root / f"{engine}-small-again"))
            rate = (args.texts - SMALL) / max(total - startup, 1e-9)
            gain = 1 / results["bare"]["texts_per_s"] - 1 / rate  # type: ignore[operator]
            crossover = startup / gain if gain > 0 else None
            results[engine] = {
                "texts_per_s": rate,
                "startup_s": startup,
                "total_s": total,
                "crossover": crossover,
            }
            where = (
                f"from ~{crossover:,.0f} texts"
                if crossover
                else "never on this machine (not faster than bare)"
            )
            print(
                f"{engine}: start-up {startup:.1f} s, {rate:,.0f} texts/s after it, "
                f"{args.texts:,} texts in {total:.1f} s; beats bare {where}",
                flush=True,
            )
        registry.engine.dispose()
        print(json.dumps(results))


if __name__ == "__main__":
    main()

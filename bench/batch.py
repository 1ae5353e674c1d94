"""End-to-end batch throughput: send a CSV to the real server, wait until every row is stored.

    python bench/batch.py [--items 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Prints items/s for SQLite (and PostgreSQL, if given) beside the bare model's own batch
speed (``predict`` on the same texts in one process), measured in the same run, each the
best of interleaved rounds (these machines are noisy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coe_template.artifacts.runs import Artifacts  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.predict import predict  # noqa: E402
from coe_template.model.train import TrainedModel, train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from config.settings import PROJECT_ROOT  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

WORDS = (
    "object detection segmentation transformer bert sentiment translation kubernetes serving "
    "monitoring pipeline forecasting recommender graph reinforcement tabular boosting cnn images "
    "text tokens deployment drift registry features clustering"
).split()


def texts(n: int) -> list[str]:
    """Generated project blurbs: 8-24 words from the field's vocabulary, deterministic."""
    return [" ".join(WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(8 + i % 17)) for i in range(n)]


BARE = "bare model, predict() in chunks of 1000, one process"


def registry_at(url: str, store: Path, trained: TrainedModel) -> None:
    registry = Registry.open(url, store, upgrade=True)
    registry.ensure_model("project-tagger")
    registry.register("project-tagger", trained)
    registry.set_alias("project-tagger", PRODUCTION, 1)
    registry.engine.dispose()


def end_to_end(url: str, store: Path, csv: bytes, items: int, workers: int) -> float:
    env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": url}
    with (
        tempfile.NamedTemporaryFile(suffix=".log") as log,
        gunicorn(env, Path(log.name), workers=workers) as (base, _),
    ):
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/batch-predictions", content=csv, headers={"Content-Type": "text/csv"}, timeout=300
        )
        response.raise_for_status()
        accepted = time.perf_counter() - started
        job_url = base + response.headers["location"]
        while (job := httpx.get(job_url, timeout=30).json()["data"]["job"])["status"] in (
            "queued",
            "running",
        ):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    if job["status"] != "succeeded" or job["items"]["done"] != items:
        raise SystemExit(f"job did not finish cleanly: {job}")
    print(
        f"  {url.split(':')[0]}: job accepted after {accepted:.2f} s, every row stored after {elapsed:.2f} s"
    )
    return items / elapsed


def bare_speed(corpus: list[str], artifacts: Artifacts) -> float:
    started = time.perf_counter()
    for first in range(0, len(corpus), 1000):
        predict(corpus[first : first + 1000], artifacts)
    return len(corpus) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure too (a fresh schema is used)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of every measurement, interleaved; each figure is the best round's",
    )
    options = parser.parse_args()

    trained = train(load_dataset(bundled_dataset_path()), load_args(PROJECT_ROOT / "config" / "args.json"))
    corpus = texts(options.items)
    csv = ("id,text\n" + "".join(f"p{i},{t}\n" for i, t in enumerate(corpus))).encode()
    sqlite_name = f"end to end, SQLite, {options.workers} workers"
    postgres_name = f"end to end, PostgreSQL, {options.workers} workers"
    best: dict[str, float] = {}

    def keep(name: str, rate: float) -> None:
        best[name] = max(rate, best.get(name, 0.0))

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        (Path(tmp) / "sqlite").mkdir()
        sqlite = f"sqlite:///{tmp}/sqlite/registry.db"
        registry_at(sqlite, Path(tmp) / "sqlite", trained)
        artifacts = Registry.open(sqlite, Path(tmp) / "sqlite").load("project-tagger", 1)
        if options.postgres:
            postgres = stack.enter_context(postgres_schema(options.postgres, prefix="bench"))
            registry_at(postgres, Path(tmp) / "postgres", trained)
        for _ in range(options.rounds):  # interleaved, so a slow spell of the machine hits every figure
            keep(BARE, bare_speed(corpus, artifacts))
            keep(sqlite_name, end_to_end(sqlite, Path(tmp) / "sqlite", csv, options.items, options.workers))
            if options.postgres:
                keep(
                    postgres_name,
                    end_to_end(postgres, Path(tmp) / "postgres", csv, options.items, options.workers),
                )
    rows = list(best.items())
    bare = best[BARE]

    print(f"{options.items} items, best of {options.rounds} interleaved rounds, measured in one run")
    print(f"{'':<56} {'items/s':>9} {'vs bare':>8}")
    for name, rate in rows:
        print(f"{name:<56} {rate:>9,.0f} {rate / bare:>8.2f}")


if __name__ == "__main__":
    main()

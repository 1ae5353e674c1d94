"""Real-time serving speed, measured in one run: the predictor in process, then three servers under wrk.

    python bench/serving.py [--duration 10] [--connections 16] [--workers 2]

Trains the default pipeline (on ../shared/data/labeled_projects.csv when it is there,
else on the bundled data), then prints:

1. the in-process cost per text of the compiled predictor against scikit-learn's
   ``pipeline.predict_proba``, for 1 text and for 1,000 texts per call;
2. requests/s, texts/s, p50/p99 latency and errors for 1, 16 and 64 texts per request,
   from wrk against six servers started alike (gunicorn, ``config/gunicorn.py``,
   the same workers): this service; ``bench/noop_app.py``, a Connexion FlaskApp whose
   handler does nothing (the stock framework's ceiling, every request through a2wsgi's threads);
   ``bench/noop_async_app.py``, the same no-op as a Connexion AsyncApp (the framework's ceiling
   without WSGI); ``bench/seed_fastapi_app.py``, the
   seed's FastAPI app serving the same model with ``predict_proba`` (the comparison);
   the service with ``COE_ACCESS_LOG=false`` (metrics, no access line); the service with
   ``COE_PREDICTION_LOG=off`` (what the prediction ledger costs); ``bench/unobserved_app.py``,
   the service without its metrics and access-log middleware (what observability costs);
   and, when its virtual environment is there (``make .venv-mlflow``), MLflow's
   ``mlflow models serve`` on the same pipeline (``bench/mlflow_server.py``);
3. each of the service's workers' peak RSS and private memory (what one more worker adds).

Servers are measured in interleaved rounds and each keeps its best round; ratios are computed
within the run: these machines are noisy, absolute figures are not comparable across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mlflow_server import mlflow_server  # noqa: E402
from bench.mlflow_server import version as mlflow_version  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.compiled import compile_pipeline  # noqa: E402
from coe_template.model.data import bundled_dataset_path, clean_text, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

SIZES = (1, 16, 64)
#: Texts sent in requests: the bundled data's, so every run sends the same.
REQUEST_TEXTS = [t for t in load_dataset(bundled_dataset_path()).texts if len(t) < 1000][:512]


def per_text_us(call: Callable[[], object], texts: int, seconds: float = 1.0) -> float:
    """Best of five rounds of repeated calls, in microseconds per text."""
    rounds = []
    for _ in range(5):
        n, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / 5:
            call()
            n += 1
        rounds.append(elapsed / n / texts * 1e6)
    return min(rounds)


def predictor_figures(pipeline: Pipeline, texts: list[str]) -> list[tuple[str, float, float]]:
    compiled = compile_pipeline(pipeline)
    cleaned = [clean_text(t) for t in texts]
    thousand = (cleaned * (1000 // len(cleaned) + 1))[:1000]
    one = cleaned[len(cleaned) // 2]
    return [
        (
            "1 text per call",
            per_text_us(lambda: pipeline.predict_proba([one]), 1),
            per_text_us(lambda: compiled.predict_proba([one]), 1),
        ),
        (
            "1,000 texts per call",
            per_text_us(lambda: pipeline.predict_proba(thousand), 1000, 3.0),
            per_text_us(lambda: compiled.predict_proba(thousand), 1000, 3.0),
        ),
    ]


def answers_predictions(base: str) -> bool:
    return (
        httpx.post(f"{base}/predictions", json={"texts": [{"text": "warm up"}]}, timeout=5).status_code == 200
    )


@contextmanager
def server(app: str, env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """gunicorn with config/gunicorn.py serving ``app``, warmed up; yields its URL and master pid."""
    with gunicorn(env, log, workers=workers, app=app, ready=answers_predictions) as (base, process):
        # One worker answering is not all of them: a worker still starting when wrk opens its
        # connections would leave every connection to the other one for the whole run.
        time.sleep(2)
        for _ in range(50):
            answers_predictions(base)
        yield f"{base}/predictions", process.pid


def wrk(url: str, bodies: Path, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "post.lua"),
            url,
        ],
        env={**os.environ, "BENCH_BODIES": str(bodies)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])
    figures["requests_per_s"] = figures["requests"] / figures["seconds"]
    return figures


def worker_memory(master: int) -> list[tuple[float, float]]:
    """(peak RSS, private memory) in MB of each worker of a gunicorn master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    memory = []
    for pid in children:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        private = sum(
            int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean", "Private_Dirty"))
        )
        memory.append((int(status["VmHWM"].split()[0]) / 1024, private / 1024))
    return memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds over all servers, interleaved; each figure is the best round's",
    )
    parser.add_argument(
        "--mlflow-python",
        type=Path,
        default=ROOT / ".venv-mlflow" / "bin" / "python",
        help="the Python of MLflow's own virtual environment (make .venv-mlflow); skipped when absent",
    )
    options = parser.parse_args()
    mlflow = options.mlflow_python if options.mlflow_python.exists() else None
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    data = SHARED_DATA if SHARED_DATA.exists() else bundled_dataset_path()
    trained = train(load_dataset(data), load_args(ROOT / "config" / "args.json"))
    print(
        f"model: TF-IDF + logistic regression trained on {data.name}; {options.workers} workers, "
        f"{options.connections} connections, {options.duration} s per run, best of {options.rounds} rounds\n"
    )

    print("Predictor, in process (µs per text, best of 5)")
    print(f"{'':<24}{'scikit-learn':>14}{'compiled':>10}{'speed-up':>10}")
    for name, sklearn_us, compiled_us in predictor_figures(trained.pipeline, REQUEST_TEXTS):
        print(f"{name:<24}{sklearn_us:>14.1f}{compiled_us:>10.1f}{sklearn_us / compiled_us:>9.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        registry = Registry.open(f"sqlite:///{store}/registry.db", store, upgrade=True)
        registry.ensure_model("project-tagger")
        run_id = registry.register("project-tagger", trained).run_id
        assert run_id is not None  # a registered version is ready
        registry.set_alias("project-tagger", PRODUCTION, 1)
        registry.engine.dispose()
        env = {"COE_MODEL_STORE": str(store), "BENCH_MODEL_STORE": str(store), "BENCH_RUN_ID": run_id}
        bodies, mlflow_bodies = {}, {}
        for size in SIZES:
            mlflow_bodies[size] = store / f"mlflow-bodies-{size}.jsonl"
            mlflow_bodies[size].write_text(
                "".join(
                    json.dumps(
                        {"inputs": [REQUEST_TEXTS[(n * size + k) % len(REQUEST_TEXTS)] for k in range(size)]}
                    )
                    + "\n"
                    for n in range(64)
                )
            )
            bodies[size] = store / f"bodies-{size}.jsonl"
            bodies[size].write_text(
                "".join(
                    json.dumps(
                        {
                            "texts": [
                                {"text": REQUEST_TEXTS[(n * size + k) % len(REQUEST_TEXTS)]}
                                for k in range(size)
                            ]
                        }
                    )
                    + "\n"
                    for n in range(64)
                )
            )

        servers = {
            "service": ("wsgi:app", {}),
            "no-op FlaskApp": ("bench.noop_app:app", {}),
            "no-op AsyncApp": ("bench.noop_async_app:app", {}),
            "seed FastAPI": ("bench.seed_fastapi_app:app", {}),
            "no access line": ("wsgi:app", {"COE_ACCESS_LOG": "false"}),
            "no ledger": ("wsgi:app", {"COE_PREDICTION_LOG": "off"}),
            "unobserved": ("bench.unobserved_app:app", {}),
        }
        results: dict[tuple[str, int], dict[str, float]] = {}
        memory: list[tuple[float, float]] = []
        for _ in range(options.rounds):  # interleaved, so a slow spell of the machine hits every server
            for name, (app, extra) in servers.items():
                with server(app, {**env, **extra}, options.workers, store / f"{name}.log") as (url, master):
                    for size in SIZES:
                        figures = wrk(url, bodies[size], options.connections, options.duration)
                        best = results.get((name, size))
                        if best is None or figures["requests_per_s"] > best["requests_per_s"]:
                            results[name, size] = figures
                    if name == "service":
                        memory = worker_memory(master)
            if mlflow is not None:
                with mlflow_server(mlflow, trained.pipeline, options.workers, store) as url:
                    for size in SIZES:
                        figures = wrk(url, mlflow_bodies[size], options.connections, options.duration)
                        best = results.get(("MLflow", size))
                        if best is None or figures["requests_per_s"] > best["requests_per_s"]:
                            results["MLflow", size] = figures

    print("\nServers under wrk")
    print(
        f"{'server':<16}{'texts/req':>10}{'req/s':>9}{'texts/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'p99/p50':>8}{'errors':>8}"
    )
    for (name, size), r in results.items():
        print(
            f"{name:<16}{size:>10}{r['requests_per_s']:>9,.0f}{r['requests_per_s'] * size:>9,.0f}"
            f"{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['p99_ms'] / r['p50_ms']:>8.1f}"
            f"{r['non_2xx'] + r['socket_errors']:>8}"
        )

    def rate(name: str, size: int) -> float:
        return results[name, size]["requests_per_s"]

    print("\nRatios (this run; targets from issue 20)")

    def ratio(label: str, value: float, target: float | None = None) -> None:
        verdict = (
            "" if target is None else f"  target >= {target:g}: {'met' if value >= target else 'NOT met'}"
        )
        print(f"{label:<52}{value:>6.2f}{verdict}")

    ratio("service / no-op FlaskApp, 1 text", rate("service", 1) / rate("no-op FlaskApp", 1), 1.3)
    ratio("service / no-op AsyncApp, 1 text", rate("service", 1) / rate("no-op AsyncApp", 1), 0.6)
    ratio("no-op FlaskApp / no-op AsyncApp", rate("no-op FlaskApp", 1) / rate("no-op AsyncApp", 1))
    for size in SIZES:  # texts/s: the same texts per request on both sides
        ratio(
            f"service / seed FastAPI, {size} texts",
            rate("service", size) / rate("seed FastAPI", size),
            2.0 if size == 1 else 1.0,
        )
    if mlflow is not None:
        for size in SIZES:
            ratio(
                f"service / MLflow {mlflow_version(mlflow)}, {size} texts",
                rate("service", size) / rate("MLflow", size),
                2.0 if size == 1 else None,
            )
    else:
        print(f"MLflow: not measured ({options.mlflow_python} is missing: make .venv-mlflow)")
    for size in SIZES:  # issue 21: the ledger on (hash, the default) costs at most 10% of 1-text throughput
        ratio(
            f"service / no ledger, {size} texts (the ledger's cost)",
            rate("service", size) / rate("no ledger", size),
            0.9 if size == 1 else None,
        )
    for size in SIZES:
        ratio(
            f"no access line / unobserved, {size} texts (metrics)",
            rate("no access line", size) / rate("unobserved", size),
        )
        ratio(
            f"service / unobserved, {size} texts (metrics + access)",
            rate("service", size) / rate("unobserved", size),
        )
    for size in SIZES:
        r = results["service", size]
        ratio(f"service p99 / p50, {size} texts", r["p99_ms"] / r["p50_ms"])
    print("\nService workers' memory (MB)")
    for n, (peak, private) in enumerate(memory, 1):
        print(f"worker {n}: peak RSS {peak:.0f}, private {private:.0f} (what one more worker adds)")
    print(f"median private: {statistics.median(p for _, p in memory):.0f}")


if __name__ == "__main__":
    main()

"""Real-time predictions while a batch job runs: batch in the server against batch in a worker of its own.

    python bench/realtime_under_batch.py [--items 100000] [--duration 10] [--connections 16] [--workers 2]
                                         [--rounds 2] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

The real server (gunicorn, ``config/gunicorn.py``, the same workers each time) is started
and warmed up, then 1-text ``POST /predictions`` requests are sent for ``--duration``
seconds (wrk, or a Python load generator when wrk is missing), in three scenarios:

a. no batch job (the default server: batch in the server, idle);
b. while an ``--items`` batch job runs in the server's own workers (``COE_BATCH_IN_SERVER=true``);
c. while it runs in one ``coe-template worker`` beside a server with ``COE_BATCH_IN_SERVER=false``.

Prints req/s, p50/p99 latency and errors of the real-time requests, and the batch items/s
reached during the same seconds. A job that finishes before the measurement ends is
flagged: give more ``--items``. Scenarios run in interleaved rounds and each keeps its best
round (by req/s); compare within one run, these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.batch import texts  # noqa: E402
from bench.serving import REQUEST_TEXTS, SHARED_DATA, server, wrk  # noqa: E402
from coe_template.batch.jobs import BatchJobs  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402

NO_JOB = "no batch job"
IN_SERVER = "batch in the server"
IN_WORKER = "batch in a separate worker"
SCENARIOS = (NO_JOB, IN_SERVER, IN_WORKER)


def python_load(url: str, bodies: Path, connections: int, duration: int) -> dict[str, float]:
    """wrk's figures from threads of keep-alive clients (slower than wrk, and takes CPU from the server)."""
    payloads = bodies.read_text().splitlines()
    latencies: list[float] = []
    errors = [0, 0]  # non-2xx, transport errors
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def client(n: int) -> None:
        mine: list[float] = []
        bad, broken = 0, 0
        with httpx.Client(headers={"Content-Type": "application/json"}, timeout=30) as http:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    response = http.post(url, content=payloads[(n + len(mine)) % len(payloads)])
                    bad += not response.is_success
                except httpx.TransportError:
                    broken += 1
                    continue
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            errors[1] += broken

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "non_2xx": errors[0],
        "socket_errors": errors[1],
    }


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[None]:
    """``coe-template worker`` from this checkout; SIGTERM (and a wait) afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "coe_template.cli", "worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def done_items(base: str, job_id: str) -> tuple[int, str]:
    job = httpx.get(f"{base}/batch-predictions/{job_id}", timeout=30).json()["data"]["job"]
    return job["items"]["done"], job["status"]


def measure(
    scenario: str,
    url: str,
    store: Path,
    csv: bytes,
    options: argparse.Namespace,
    bodies: Path,
    load: Callable[[str, Path, int, int], dict[str, float]],
) -> dict[str, float]:
    """One scenario, one round: a server (and a worker), a job, real-time load; the job removed after."""
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": url,
        "COE_BATCH_IN_SERVER": "false" if scenario == IN_WORKER else "true",
    }
    log = store / f"{scenario.replace(' ', '-')}.log"
    with ExitStack() as stack:
        predictions, _ = stack.enter_context(server("wsgi:app", env, options.workers, log))
        base = predictions.removesuffix("/predictions")
        job_id = None
        if scenario != NO_JOB:
            if scenario == IN_WORKER:
                stack.enter_context(worker(env, store / "worker.log"))
            response = httpx.post(
                f"{base}/batch-predictions", content=csv, headers={"Content-Type": "text/csv"}, timeout=300
            )
            response.raise_for_status()
            job_id = response.json()["data"]["job"]["id"]
            deadline = time.monotonic() + 120
            while done_items(base, job_id)[0] == 0:  # measure while the batch is under way, not before
                if time.monotonic() > deadline:
                    raise SystemExit(f"{scenario}: the batch job did not start; see {log}")
                time.sleep(0.05)
        before = done_items(base, job_id)[0] if job_id else 0
        figures = load(predictions, bodies, options.connections, options.duration)
        after, status = done_items(base, job_id) if job_id else (0, "")
        figures["batch_items_per_s"] = (after - before) / figures["seconds"]
        figures["job_ran_throughout"] = status == "running"
        if job_id:
            jobs = BatchJobs(Registry.open(url, store, upgrade=True))
            if jobs.cancel_or_delete(job_id) is not None:  # cancelled: no later server or worker takes it up
                jobs.cancel_or_delete(job_id)  # then deleted with its results, as a finished job is at once
            jobs.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in the batch job")
    parser.add_argument("--duration", type=int, default=10, help="seconds of real-time load per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds over all scenarios, interleaved; each figure is the best round's",
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of SQLite (a fresh schema)")
    options = parser.parse_args()
    load = wrk if shutil.which("wrk") else python_load
    if load is python_load:
        print("wrk not found (apt-get install wrk): using the Python load generator, which competes for CPU")

    data = SHARED_DATA if SHARED_DATA.exists() else bundled_dataset_path()
    trained = train(load_dataset(data), load_args(ROOT / "config" / "args.json"))
    csv = ("id,text\n" + "".join(f"p{i},{t}\n" for i, t in enumerate(texts(options.items)))).encode()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        store = Path(tmp)
        url = (
            stack.enter_context(postgres_schema(options.postgres, prefix="bench"))
            if options.postgres
            else f"sqlite:///{store}/registry.db"
        )
        registry = Registry.open(url, store, upgrade=True)
        registry.ensure_model("project-tagger")
        registry.register("project-tagger", trained)
        registry.set_alias("project-tagger", PRODUCTION, 1)
        registry.engine.dispose()
        bodies = store / "bodies-1.jsonl"
        bodies.write_text("".join(json.dumps({"texts": [{"text": t}]}) + "\n" for t in REQUEST_TEXTS[:64]))
        for n in range(options.rounds):  # interleaved, so a slow spell of the machine hits every scenario
            for scenario in SCENARIOS:
                figures = measure(scenario, url, store, csv, options, bodies, load)
                print(
                    f"round {n + 1}, {scenario}: {figures['requests_per_s']:,.0f} req/s, "
                    f"p99 {figures['p99_ms']:.1f} ms, batch {figures['batch_items_per_s']:,.0f} items/s",
                    flush=True,
                )
                best = results.get(scenario)
                if best is None or figures["requests_per_s"] > best["requests_per_s"]:
                    results[scenario] = figures

    database = "PostgreSQL" if options.postgres else "SQLite"
    print(
        f"\n1-text POST /predictions, {options.connections} connections, {options.duration} s, "
        f"{options.workers} gunicorn workers, {database}; batch job of {options.items:,} items; "
        f"best of {options.rounds} interleaved rounds"
    )
    print(
        f"{'':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'batch items/s':>15}"
        f"{'req/s vs a':>12}{'p99 vs a':>10}"
    )
    quiet = results[NO_JOB]
    for scenario in SCENARIOS:
        r = results[scenario]
        flag = "" if scenario == NO_JOB or r["job_ran_throughout"] else "  (job ended early: more --items)"
        print(
            f"{scenario:<28}{r['requests_per_s']:>9,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['non_2xx'] + r['socket_errors']:>8}{r['batch_items_per_s']:>15,.0f}"
            f"{r['requests_per_s'] / quiet['requests_per_s']:>12.2f}"
            f"{r['p99_ms'] / quiet['p99_ms']:>10.2f}{flag}"
        )


if __name__ == "__main__":
    main()

"""A soak: mixed traffic against the real server, with a promotion and a rollback in the middle.

    python bench/soak.py [--seconds 60] [--connections 16] [--workers 2] [--database-url URL]

Trains the default model on the bundled data, registers it twice (versions 1 and 2,
``production`` on 1) in a temporary store, starts gunicorn with ``config/gunicorn.py``, then
keeps ``--connections`` clients busy for ``--seconds``: 1- and 64-text predictions, reads
(``/``, ``/models``, ``/args``, ``/performance``), batch jobs (create, poll, read the
results), while an admin promotes version 2 a third of the way in and rolls back to 1 at
two thirds. Prints p50/p99 per kind of request, every unexpected answer, and each
worker's RSS after a warm-up and at the end. Exits 1 on any unexpected answer.

``tests/test_soak.py`` runs it for a few seconds in ``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from tests.servers import gunicorn, rss_bytes, worker_pids  # noqa: E402

MODEL = "project-tagger"
ADMIN_KEY = "soak-admin-key-0123456789"
TEXTS = [t for t in load_dataset(bundled_dataset_path()).texts if len(t) < 1000][:256]
READS = ("/", "/models", "/args", "/performance")
#: What each connection sends, in turn (each starts at a different place).
MIX = ("predict-1", "read", "predict-1", "predict-64", "read", "predict-1", "batch", "read", "predict-1")
EXPECTED = {
    "predict-1": 200,
    "predict-64": 200,
    "read": 200,
    "batch-create": 202,
    "batch-poll": 200,
    "batch-results": 200,
    "promote": 200,
}


@dataclass
class Report:
    seconds: float
    connections: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unexpected: Counter = field(default_factory=Counter)  # (kind, status or error) -> count
    versions_served: Counter = field(default_factory=Counter)
    batch_items_done: int = 0
    rss_start: dict[int, int] = field(default_factory=dict)
    rss_end: dict[int, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(map(len, self.latencies.values()))

    def rss_growth(self) -> dict[int, int]:
        """Bytes each worker grew by, for the workers alive at both samples."""
        return {pid: self.rss_end[pid] - rss for pid, rss in self.rss_start.items() if pid in self.rss_end}

    def text(self) -> str:
        lines = [
            (
                f"{self.requests} requests over {self.connections} connections in {self.seconds:.0f} s "
                f"({self.requests / self.seconds:.0f}/s); batch items done: {self.batch_items_done}; "
                f"predictions by version: {dict(sorted(self.versions_served.items()))}"
            ),
            f"{'':<16}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}",
        ]
        everything = [s for values in self.latencies.values() for s in values]
        for kind, values in sorted(self.latencies.items()) + [("all", everything)]:
            lines.append(
                f"{kind:<16}{len(values):>10}{percentile(values, 50):>10.1f}{percentile(values, 99):>10.1f}"
            )
        lines.append(f"unexpected answers: {dict(self.unexpected) or 'none'}")
        for pid, growth in self.rss_growth().items():
            lines.append(
                f"worker {pid}: RSS {self.rss_start[pid] / 2**20:.1f} MiB after warm-up, "
                f"{self.rss_end[pid] / 2**20:.1f} MiB at the end ({growth / 2**20:+.1f} MiB)"
            )
        replaced = set(self.rss_start) ^ set(self.rss_end)
        if replaced:
            lines.append(f"workers replaced during the soak: {sorted(replaced)}")
        return "\n".join(lines)


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


class Client:
    """One connection's traffic: the mix in turn, and one batch job at a time."""

    def __init__(self, base: str, number: int, report: Report, lock: threading.Lock) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.number = number
        self.report = report
        self.lock = lock
        self.job: str | None = None
        self.texts = itertools.cycle(TEXTS[number:] + TEXTS[:number])
        self.reads = itertools.cycle(READS[number % len(READS) :] + READS[: number % len(READS)])

    def call(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as error:
            with self.lock:
                self.report.unexpected[(kind, type(error).__name__)] += 1
            return None
        with self.lock:
            self.report.latencies[kind].append(time.perf_counter() - started)
            if response.status_code != EXPECTED[kind]:
                self.report.unexpected[(kind, response.status_code)] += 1
                return None
        return response

    def predict(self, kind: str, count: int) -> None:
        body = {"texts": [{"text": next(self.texts)} for _ in range(count)]}
        if response := self.call(kind, "POST", "/predictions", json=body):
            with self.lock:
                self.report.versions_served[response.json()["data"]["model"]["version"]] += 1

    def batch(self) -> None:
        """One step of a job's life: create it, or poll it, or read its results once done."""
        if self.job is None:
            items = [{"id": f"c{self.number}-{n}", "text": next(self.texts)} for n in range(50)]
            if response := self.call("batch-create", "POST", "/batch-predictions", json={"items": items}):
                self.job = response.headers["location"]
            return
        if not (response := self.call("batch-poll", "GET", self.job)):
            self.job = None
            return
        job = response.json()["data"]["job"]
        if job["status"] in ("queued", "running"):
            return
        if job["status"] != "succeeded":
            with self.lock:
                self.report.unexpected[("batch-job", job["status"])] += 1
        elif self.call("batch-results", "GET", f"{self.job}/results", params={"page_size": 100}):
            with self.lock:
                self.report.batch_items_done += job["items"]["done"]
        self.job = None

    def run(self, stop: threading.Event) -> None:
        with self.http:
            for kind in itertools.islice(itertools.cycle(MIX), self.number, None):
                if stop.is_set():
                    return
                if kind == "predict-1":
                    self.predict(kind, 1)
                elif kind == "predict-64":
                    self.predict(kind, 64)
                elif kind == "read":
                    self.call(kind, "GET", next(self.reads))
                else:
                    self.batch()


def worker_rss(master_pid: int) -> dict[int, int]:
    return {pid: rss_bytes(pid) for pid in worker_pids(master_pid)}


def soak(
    base: str,
    master_pid: int,
    seconds: float,
    connections: int,
    admin_key: str = ADMIN_KEY,
    warmup: float = 2.0,
) -> Report:
    """Mixed traffic for ``seconds``; promote version 2 at a third, roll back to 1 at two thirds."""
    report, lock, stop = Report(seconds, connections), threading.Lock(), threading.Event()
    clients = [Client(base, n, report, lock) for n in range(connections)]
    threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
    admin = Client(base, connections, report, lock)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(warmup)
        report.rss_start = worker_rss(master_pid)
        for version, at in ((2, seconds / 3), (1, seconds * 2 / 3)):
            time.sleep(max(0.0, started + at - time.monotonic()))
            admin.call(
                "promote",
                "PUT",
                f"/models/{MODEL}/aliases/production",
                json={"version": version, "reason": "bench"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        report.rss_end = worker_rss(master_pid)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        admin.http.close()
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url", help="the registry's database; a SQLite file in the store by default"
    )
    options = parser.parse_args()

    from coe_template.model.args import load_args
    from coe_template.model.train import train
    from coe_template.registry import PRODUCTION, Registry

    trained = train(load_dataset(bundled_dataset_path()), load_args(ROOT / "config" / "args.json"))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        url = options.database_url or f"sqlite:///{store}/registry.db"
        registry = Registry.open(url, store, upgrade=True)
        registry.ensure_model(MODEL, "Tags projects.")
        registry.register(MODEL, trained)
        registry.register(MODEL, trained)
        registry.set_alias(MODEL, PRODUCTION, 1)
        registry.engine.dispose()
        env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": url, "COE_ADMIN_KEYS": ADMIN_KEY}
        with gunicorn(env, Path(tmp) / "server.log", workers=options.workers) as (base, master):
            report = soak(base, master.pid, options.seconds, options.connections)
    print(report.text())
    sys.exit(1 if report.unexpected else 0)


if __name__ == "__main__":
    main()

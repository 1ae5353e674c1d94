"""A worker's memory during a large CSV upload, and predictions on the same worker meanwhile.

    python bench/upload_memory.py [--mib 50] [--workers 1] [--postgres postgresql+psycopg://...]

The real server (gunicorn, ``config/gunicorn.py``, batch work off so only the upload
counts) gets one ``text/csv`` body of as many tiny rows (``1a2b,a b``) as fit in ``--mib``
MiB, while a thread sends 1-text predictions to it. With one worker (the default) the
upload and the predictions share that worker. Prints the worker's RSS at idle, its peak
while the upload was parsed and stored (``VmHWM``, reset before the upload, and VmRSS
sampled every 5 ms), its RSS a few seconds after, and the predictions' p50/p99 during the
upload. The target (issue 18): peak within 3x the body above idle, back within 50 MB of idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

MIB = 1 << 20
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def tiny_rows(limit: int) -> tuple[bytes, int]:
    """A CSV of as many ``<base-36 id>,a b`` rows as fit in ``limit`` bytes, and how many rows."""
    parts = [b"id,text\n"]
    size, n = len(parts[0]), 0
    while True:
        ident, k = "", n
        while True:
            ident = _DIGITS[k % 36] + ident
            k //= 36
            if not k:
                break
        row = f"{ident},a b\n".encode()
        if size + len(row) > limit:
            return b"".join(parts), n
        parts.append(row)
        size += len(row)
        n += 1


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(p) for p in children]


def settle(pid: int, seconds: float = 2.0) -> int:
    """RSS in bytes once it stops moving (or after ``seconds``)."""
    time.sleep(seconds)
    return status_kb(pid, "VmRSS") * 1024


def tiny_json_items(limit: int) -> tuple[bytes, int]:
    """A JSON body ``{"items": [{"id": ..., "text": "a b"}, ...]}`` of as many items as fit in ``limit`` bytes."""
    csv, rows = tiny_rows(limit * 10 // 32)  # ~10 bytes a CSV row, ~30 a JSON item
    items = b",".join(b'{"id":"%s","text":"a b"}' % line.split(b",")[0] for line in csv.split(b"\n")[1:-1])
    return b'{"items":[' + items + b"]}", rows


def measure_upload(
    base: str, pid: int, csv: bytes, after_seconds: float = 5.0, content_type: str = "text/csv"
) -> dict[str, Any]:
    """Upload ``csv`` to ``base`` while predicting on it; the worker ``pid``'s memory and the latencies.

    Idle is measured once the worker has served a small upload too: what a first request of
    a kind costs once (code paths, caches, a thread's arena) is no part of what an upload takes.
    """
    warm_up, _ = tiny_rows(64 << 10)
    httpx.post(f"{base}/batch-predictions", content=warm_up, headers={"Content-Type": "text/csv"}, timeout=60)
    idle = settle(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    peak_sampled = idle
    done = threading.Event()
    latencies: list[float] = []
    failures = 0

    def sample() -> None:
        nonlocal peak_sampled
        while not done.is_set():
            peak_sampled = max(peak_sampled, status_kb(pid, "VmRSS") * 1024)
            time.sleep(0.005)

    def predict() -> None:
        nonlocal failures
        with httpx.Client(base_url=base, timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                answer = client.post("/predictions", json={"texts": [{"text": "object detection"}]})
                latencies.append(time.perf_counter() - started)
                failures += answer.status_code != 200
                time.sleep(0.01)

    threads = [threading.Thread(target=sample), threading.Thread(target=predict)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        response = httpx.post(
            f"{base}/batch-predictions", content=csv, headers={"Content-Type": content_type}, timeout=600
        )
    finally:
        seconds = time.perf_counter() - started
        done.set()
        for thread in threads:
            thread.join()
    peak = max(peak_sampled, status_kb(pid, "VmHWM") * 1024)
    after = settle(pid, after_seconds)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "status": response.status_code,
        "body": len(csv),
        "seconds": seconds,
        "idle": idle,
        "peak": peak,
        "after": after,
        "predictions": len(latencies),
        "failures": failures,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "max_ms": max(latencies, default=0.0) * 1000,
        "answer": response.json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=50, help="size of the CSV body in MiB")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of SQLite (a fresh schema)")
    parser.add_argument("--form", action="store_true", help="upload the CSV as a multipart/form-data file")
    parser.add_argument(
        "--json",
        action="store_true",
        help="send the items as application/json instead (Connexion parses and validates it whole: refused "
        "as more than the spec's 10,000 items, after it was parsed)",
    )
    options = parser.parse_args()
    limit = int(options.mib * MIB) - (200 if options.form else 0)  # the form's own lines
    csv, rows = tiny_json_items(limit) if options.json else tiny_rows(limit)
    content_type = "application/json" if options.json else "text/csv"
    if options.form:
        boundary = "upload-memory-boundary"
        csv = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="rows.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode()
            + csv
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
    trained = train(load_dataset(bundled_dataset_path()), load_args(ROOT / "config" / "args.json"))
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
        env = {
            "COE_MODEL_STORE": str(store),
            "DATABASE_URL": url,
            "COE_BATCH_IN_SERVER": "false",
            "COE_MAX_UPLOAD_BYTES": str(max(limit, 50 * MIB)),
            "COE_BATCH_MAX_OPEN_ITEMS_PER_CLIENT": str(2 * rows),
            "COE_BATCH_MAX_OPEN_ITEMS": str(2 * rows),
            "COE_ACCESS_LOG": "false",
        }
        base, process = stack.enter_context(gunicorn(env, store / "server.log", workers=options.workers))
        for _ in range(50):
            httpx.post(f"{base}/predictions", json={"texts": [{"text": "warm up"}]}, timeout=5)
        pids = worker_pids(process.pid)
        # Several workers: the upload lands on one of them, unknown in advance; the first is watched.
        figures = measure_upload(base, pids[0], csv, content_type=content_type)
    mb = 1e6
    print(
        f"{rows:,} rows, {figures['body'] / MIB:.1f} MiB {content_type}, {options.workers} worker(s), "
        f"{'PostgreSQL' if options.postgres else 'SQLite'}: answered {figures['status']} in "
        f"{figures['seconds']:.1f} s\n"
        f"worker RSS: idle {figures['idle'] / mb:.0f} MB, peak {figures['peak'] / mb:.0f} MB "
        f"(+{(figures['peak'] - figures['idle']) / mb:.0f} MB = "
        f"{(figures['peak'] - figures['idle']) / figures['body']:.2f}x the body), "
        f"after {figures['after'] / mb:.0f} MB (+{(figures['after'] - figures['idle']) / mb:.0f} MB)\n"
        f"predictions during the upload: {figures['predictions']}, {figures['failures']} failed, "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
    )
    if figures["status"] != 202:
        print(str(figures["answer"])[:300])


if __name__ == "__main__":
    main()

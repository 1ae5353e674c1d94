"""How soon every worker serves a promotion: from the PUT's response to each worker's swap.

    python bench/propagation.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test [--runs 6]
    python bench/propagation.py [--runs 6]            # SQLite: polling only

Starts the real server (gunicorn, ``config/gunicorn.py``, 2 workers) on a fresh schema
(or SQLite file) with ``runs + 1`` ready versions, then promotes each in turn with
``PUT /models/{name}/aliases/production``: each is new to the workers, which load and
verify its files before swapping, as for any real promotion (a rollback to a version
still cached is faster). For each PUT it prints, per worker, the time from the PUT's
response to that worker's ``now serving … version N`` log line (the moment it swaps;
its clock is this host's), and when the first of 20 answers in a row on fresh
connections that all name the new version arrived (what a client sees). On
PostgreSQL, ``COE_REFRESH_SECONDS`` is 60 unless ``--refresh`` says otherwise, so
only the notification can be what swaps within the run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

MODEL = "project-tagger"
ADMIN_KEY = "bench-admin-key-0123456789"
SWAPPED = re.compile(r"^(\S+) INFO \[(\d+)\] coe_template\.serving .*: now serving (\S+) version (\d+)", re.M)


def swaps(log: str, version: int) -> dict[int, float]:
    """Each pid's time (epoch seconds) of logging a swap to ``version``."""
    return {
        int(m[2]): datetime.fromisoformat(m[1].replace("Z", "+00:00")).timestamp()
        for m in SWAPPED.finditer(log)
        if m[3] == MODEL and int(m[4]) == version
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (a schema of its own is made and dropped)")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument(
        "--refresh", type=float, help="COE_REFRESH_SECONDS (default: 60 on PostgreSQL, 2 on SQLite)"
    )
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    refresh = options.refresh or (60.0 if options.postgres else 2.0)

    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coe-propagation-")))
        store = root / "store"
        url = (
            stack.enter_context(postgres_schema(options.postgres))
            if options.postgres
            else f"sqlite:///{store / 'registry.db'}"
        )
        trained = train(load_dataset(bundled_dataset_path()), load_args(ROOT / "config" / "args.json"))
        registry = Registry.open(url, store, upgrade=True)
        registry.ensure_model(MODEL)
        for _ in range(options.runs + 1):
            registry.register(MODEL, trained)
        registry.set_alias(MODEL, PRODUCTION, 1)
        registry.engine.dispose()

        env = {
            "COE_MODEL_STORE": str(store),
            "DATABASE_URL": url,
            "COE_ADMIN_KEYS": ADMIN_KEY,
            "COE_REFRESH_SECONDS": str(refresh),
        }
        log_path = root / "server.log"
        base, _process = stack.enter_context(gunicorn(env, log_path, workers=options.workers))
        print(
            f"{'PostgreSQL' if options.postgres else 'SQLite'}, {options.workers} workers, "
            f"COE_REFRESH_SECONDS={refresh:g}"
        )
        worker_ms: list[float] = []
        client_ms: list[float] = []
        with httpx.Client(timeout=10) as admin:
            for run in range(options.runs):
                version = run + 2  # never served before: each worker loads and verifies it first
                since = len(log_path.read_text())
                response = admin.put(
                    f"{base}/models/{MODEL}/aliases/{PRODUCTION}",
                    json={"version": version, "reason": "bench"},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
                returned, returned_mono = time.time(), time.monotonic()
                response.raise_for_status()
                streak, streak_from = 0, returned_mono
                while streak < 20:  # fresh connections, so every worker answers some
                    answer = httpx.get(f"{base}/", timeout=10).json()["data"]["model"]["version"]
                    received = time.monotonic()
                    if answer != version:
                        streak = 0
                    elif streak == 0:
                        streak, streak_from = 1, received
                    else:
                        streak += 1
                    if time.monotonic() - returned_mono > refresh + 30:
                        raise SystemExit(f"version {version} not served by every worker in time")
                client = (streak_from - returned_mono) * 1000  # the first of the 20 arrived then
                while len(found := swaps(log_path.read_text()[since:], version)) < options.workers:
                    time.sleep(0.05)
                per_worker = sorted((t - returned) * 1000 for t in found.values())
                worker_ms += per_worker
                client_ms.append(client)
                print(
                    f"PUT version {version}: workers swapped "
                    f"{', '.join(f'{ms:.0f}' for ms in per_worker)} ms after the response; "
                    f"the first of 20 answers in a row of version {version} arrived {client:.0f} ms after"
                )
        print(
            f"workers: median {statistics.median(worker_ms):.0f} ms, max {max(worker_ms):.0f} ms; "
            f"clients: median {statistics.median(client_ms):.0f} ms, max {max(client_ms):.0f} ms"
        )


if __name__ == "__main__":
    main()

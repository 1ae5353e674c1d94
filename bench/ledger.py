"""What the prediction ledger costs: the service with ``COE_PREDICTION_LOG=off``, then ``hash``, 1 text a request.

    python bench/ledger.py [--seconds 10] [--connections 8] [--workers 2] [--rounds 2]

Both servers are started alike (gunicorn, ``config/gunicorn.py``, SQLite in a temporary store) and
measured in interleaved rounds, each keeping its best; the load is ``--connections`` threads, each
with its own keep-alive connection, posting one text per request (wrk when it is installed would
load harder: bench/serving.py). Prints requests/s per mode, hash/off, and the rows the ledger holds
afterwards against the requests sent to the hash servers: each is stopped with SIGTERM, and a clean
stop writes the queue, so the rows are at least the requests (warm-up requests are recorded too).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving import REQUEST_TEXTS, server  # noqa: E402
from coe_template.ledger.schema import PredictionRow  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from coe_template.registry import PRODUCTION, Registry  # noqa: E402


def load(url: str, connections: int, seconds: float) -> tuple[float, int, int]:
    """Requests/s over ``seconds`` from ``connections`` threads, the non-200 answers, the requests."""
    done = [0] * connections
    failed = [0] * connections
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        with httpx.Client(timeout=10) as client:
            k = n
            while time.monotonic() < stop:
                text = REQUEST_TEXTS[k % len(REQUEST_TEXTS)]
                k += connections
                response = client.post(url, json={"texts": [{"text": text}]})
                done[n] += 1
                failed[n] += response.status_code != 200

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started), sum(failed), sum(done)


def stop_cleanly(master: int, seconds: float = 60) -> None:
    """SIGTERM to gunicorn's master, then wait until it has exited (a zombie, or gone)."""
    os.kill(master, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise SystemExit(f"gunicorn {master} did not stop within {seconds} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    trained = train(load_dataset(bundled_dataset_path()), load_args(ROOT / "config" / "args.json"))
    best: dict[str, float] = {"off": 0.0, "hash": 0.0}
    failures = 0
    sent = 0  # requests of the load against the hash servers (their warm-up requests come on top)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        registry = Registry.open(f"sqlite:///{store}/registry.db", store, upgrade=True)
        registry.ensure_model("project-tagger")
        registry.register("project-tagger", trained)
        registry.set_alias("project-tagger", PRODUCTION, 1)
        for round_ in range(options.rounds):
            for mode in best:
                env = {"COE_MODEL_STORE": str(store), "COE_PREDICTION_LOG": mode}
                with server("wsgi:app", env, options.workers, store / f"{mode}.log") as (url, pid):
                    rate, failed, answered = load(url, options.connections, options.seconds)
                    stop_cleanly(pid)  # SIGTERM: each worker writes its queue before it exits
                if mode == "hash":
                    sent += answered
                best[mode] = max(best[mode], rate)
                failures += failed
                print(f"round {round_ + 1}, {mode:>4}: {rate:8.1f} requests/s ({failed} not 200)")
        with registry.engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(PredictionRow))
        registry.engine.dispose()
    print(
        f"\nbest of {options.rounds}: off {best['off']:.1f}/s, hash {best['hash']:.1f}/s, "
        f"hash/off {best['hash'] / best['off']:.3f}; {failures} answers not 200\n"
        f"recorded: {rows} predictions for {sent} requests of load to the hash servers (plus their warm-up "
        "requests): none lost at a clean stop"
    )


if __name__ == "__main__":
    main()

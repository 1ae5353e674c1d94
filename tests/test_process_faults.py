"""Process faults on the real gunicorn server: a worker killed, the server stopped, workers recycled.

Each test prints the figure the README quotes (run with ``-s`` to see it).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from coe_template.data import bundled_dataset_path, load_dataset
from tests.servers import gunicorn, worker_pids

ONE = {"texts": [{"text": "object detection with a small CNN"}]}
CLIENTS = 4


def wait_for(condition, seconds: float) -> float | None:
    """Seconds until ``condition()`` holds, or None if it did not within ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


@pytest.fixture
def thousand_texts() -> dict:
    texts = load_dataset(bundled_dataset_path()).texts
    return {"texts": [{"text": texts[n % len(texts)]} for n in range(1000)]}


def test_kill_9_of_a_worker_fails_only_the_requests_it_held(model_store: Path, tmp_path: Path):
    outcomes: list[tuple[float, int | str]] = []  # (sent at, status or transport error)
    stop = threading.Event()

    def load(base: str) -> None:
        with httpx.Client(timeout=10) as client:  # keep-alive, as a proxy in front would
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    outcome: int | str = client.post(f"{base}/predictions", json=ONE).status_code
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                outcomes.append((sent, outcome))

    with gunicorn({"COE_MODEL_STORE": str(model_store)}, tmp_path / "server.log", workers=2) as (base, master):
        clients = [threading.Thread(target=load, args=(base,)) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1.5)
            workers = worker_pids(master.pid)
            assert len(workers) == 2
            killed_at = time.monotonic()
            os.kill(workers[0], signal.SIGKILL)
            replaced_after = wait_for(lambda: len(set(worker_pids(master.pid)) - set(workers)) == 1
                                      and len(worker_pids(master.pid)) == 2, 5)
            time.sleep(2)
        finally:
            stop.set()
            for thread in clients:
                thread.join()

    failed = [(sent, outcome) for sent, outcome in outcomes if outcome != 200]
    after = [outcome for sent, outcome in outcomes if sent > killed_at + 1]
    print(f"\nkill -9 of one of 2 workers under {CLIENTS} clients: {len(failed)} of {len(outcomes)} requests failed "
          f"({Counter(outcome for _, outcome in failed)}); replaced after {replaced_after:.2f} s")
    assert replaced_after is not None, "the master did not replace the killed worker within 5 s"
    # Only what the dead worker held: at most one request per client, cut mid-flight; no HTTP error.
    assert all(isinstance(outcome, str) for _, outcome in failed), failed
    assert len(failed) <= CLIENTS
    # Answering again well within 5 s: every request sent a second after the kill succeeded.
    assert after and set(after) == {200}


def test_sigterm_under_load_completes_every_request_in_flight(model_store: Path, tmp_path: Path, thousand_texts):
    graceful = 10
    slow_body = httpx.Request("POST", "http://test/predictions", json=ONE).content
    env = {"COE_MODEL_STORE": str(model_store), "COE_GRACEFUL": str(graceful)}
    with gunicorn(env, tmp_path / "server.log", workers=2) as (base, master):
        host, port = base.removeprefix("http://").split(":")

        def post_1000(_: int) -> int:
            return httpx.post(f"{base}/predictions", json=thousand_texts, timeout=60).status_code

        # Requests the server is sure to be in the middle of: half their body sent before SIGTERM.
        slow = [socket.create_connection((host, int(port)), timeout=60) for _ in range(4)]
        for sock in slow:
            sock.sendall(b"POST /predictions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(slow_body)}\r\n\r\n".encode() + slow_body[:10])
        with ThreadPoolExecutor(20) as pool:
            heavy = [pool.submit(post_1000, n) for n in range(20)]  # 20,000 texts
            time.sleep(1)  # all sent and accepted
            in_flight = sum(not future.done() for future in heavy)
            terminated = time.monotonic()
            master.send_signal(signal.SIGTERM)
            time.sleep(1)
            for sock in slow:
                sock.sendall(slow_body[10:])
            slow_answers = [sock.recv(65536) for sock in slow]
            heavy_statuses = [future.result() for future in heavy]
        assert master.wait(timeout=graceful + 15) == 0
        took = time.monotonic() - terminated
        for sock in slow:
            sock.close()

    print(f"\nSIGTERM with {in_flight} 1,000-text and 4 slow-body predictions in flight: "
          f"all answered, shut down in {took:.1f} s (COE_GRACEFUL={graceful})")
    assert heavy_statuses == [200] * 20
    for answer in slow_answers:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nconnection: close\r\n" in answer  # the server says it is leaving
    assert took < graceful + 5


def test_max_requests_with_jitter_recycles_workers(model_store: Path, tmp_path: Path):
    """``max_requests`` is honoured under the Uvicorn worker, each worker drawing its own jitter."""
    env = {"COE_MODEL_STORE": str(model_store), "GUNICORN_CMD_ARGS": "--max-requests 20 --max-requests-jitter 10"}
    log = tmp_path / "server.log"
    statuses: Counter = Counter()
    with gunicorn(env, log, workers=1) as (base, master):
        seen = {*worker_pids(master.pid)}
        for _ in range(100):
            statuses[httpx.post(f"{base}/predictions", json=ONE, timeout=10).status_code] += 1
            seen.update(worker_pids(master.pid))
    limits = [int(n) for n in re.findall(r"Maximum request limit of (\d+) exceeded", log.read_text())]
    print(f"\nmax_requests 20 + jitter 10, 100 requests: workers recycled after {limits}; {statuses}")
    assert statuses == {200: 100}
    assert len(limits) >= 3 and all(20 <= limit <= 30 for limit in limits)
    assert len(seen) >= len(limits)

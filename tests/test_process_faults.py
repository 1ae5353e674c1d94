"""Process faults on the real gunicorn server: a worker killed, the server stopped, workers recycled.

Each test prints the figure docs/reliability.md quotes (run with ``-s`` to see it).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from coe_template.model.data import bundled_dataset_path, load_dataset
from tests.servers import gunicorn, worker_pids
from tests.waiting import wait_until

ONE = {"texts": [{"text": "object detection with a small CNN"}]}
CLIENTS = 4


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

    with gunicorn({"COE_MODEL_STORE": str(model_store)}, tmp_path / "server.log", workers=2) as (
        base,
        master,
    ):
        clients = [threading.Thread(target=load, args=(base,)) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1.5)
            workers = worker_pids(master.pid)
            assert len(workers) == 2
            killed_at = time.monotonic()
            os.kill(workers[0], signal.SIGKILL)
            wait_until(
                lambda: (
                    len(set(worker_pids(master.pid)) - set(workers)) == 1
                    and len(worker_pids(master.pid)) == 2
                ),
                5,
                "the master replaced the killed worker",
                every=0.02,
            )
            replaced_after = time.monotonic() - killed_at
            time.sleep(2)
        finally:
            stop.set()
            for thread in clients:
                thread.join()

    failed = [(sent, outcome) for sent, outcome in outcomes if outcome != 200]
    after = [outcome for sent, outcome in outcomes if sent > killed_at + 1]
    print(
        f"\nkill -9 of one of 2 workers under {CLIENTS} clients: {len(failed)} of {len(outcomes)} requests failed "
        f"({Counter(outcome for _, outcome in failed)}); replaced after {replaced_after:.2f} s"
    )
    # Only what the dead worker held: at most one request per client, cut mid-flight; no HTTP error.
    assert all(isinstance(outcome, str) for _, outcome in failed), failed
    assert len(failed) <= CLIENTS
    # Answering again well within 5 s: every request sent a second after the kill succeeded.
    assert after and set(after) == {200}


def accept_queue(port: int) -> int:
    """Connections waiting for a worker to accept them on a listening port (``/proc/net/tcp``)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, _, state, queues, *_ = line.split()
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return int(queues.split(":")[1], 16)
    raise LookupError(f"nothing listens on port {port}")


def raw_request(body: bytes) -> bytes:
    return (
        b"POST /predictions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data


def test_sigterm_under_load_completes_every_request_in_flight(
    model_store: Path, tmp_path: Path, thousand_texts
):
    graceful = 10
    heavy = raw_request(json.dumps(thousand_texts).encode())  # 20 of them: 20,000 texts
    slow = raw_request(json.dumps(ONE).encode())  # 4 of them, half sent before SIGTERM, the rest after
    env = {"COE_MODEL_STORE": str(model_store), "COE_GRACEFUL": str(graceful)}
    with (
        gunicorn(env, tmp_path / "server.log", workers=2) as (base, master),
        contextlib.ExitStack() as sockets,
    ):
        port = int(base.rsplit(":", 1)[1])

        def connect() -> socket.socket:
            return sockets.enter_context(socket.create_connection(("127.0.0.1", port), timeout=60))

        heavy_sockets, slow_sockets = [connect() for _ in range(20)], [connect() for _ in range(4)]
        kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sockets.callback(kept_alive.close)
        kept_alive.request("GET", "/")
        assert kept_alive.getresponse().read()
        for sock in heavy_sockets:
            sock.sendall(heavy)
        for sock in slow_sockets:
            sock.sendall(slow[:-10])
        # In flight: every connection accepted by a worker (what waits in the listen queue
        # when the listener closes is refused, as it should be: it never reached the server).
        wait_until(lambda: accept_queue(port) == 0, 10, "every connection accepted by a worker", every=0.02)
        time.sleep(0.2)
        answered_before = sum(bool(select.select([sock], [], [], 0)[0]) for sock in heavy_sockets)
        terminated = time.monotonic()
        master.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # A request on an idle kept-alive connection, just after the stop began: uvicorn alone
        # would have closed the connection under it.
        kept_alive.request("GET", "/")
        late = kept_alive.getresponse()
        late_answer = (late.status, late.getheader("connection"), late.read())
        time.sleep(0.8)
        for sock in slow_sockets:
            sock.sendall(slow[-10:])
        answers = [read_until_closed(sock) for sock in heavy_sockets + slow_sockets]
        assert master.wait(timeout=graceful + 15) == 0
        took = time.monotonic() - terminated

    print(
        f"\nSIGTERM with {20 - answered_before} 1,000-text and 4 half-sent predictions in flight: "
        f"all answered, shut down in {took:.1f} s (COE_GRACEFUL={graceful})"
    )
    # Every request in flight answered whole: each text of its body predicted, in order.
    sent = [thousand_texts["texts"]] * 20 + [ONE["texts"]] * 4
    for answer, texts in zip(answers, sent, strict=True):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        predictions = json.loads(body)["data"]["predictions"]
        assert [p["input_text"] for p in predictions] == [t["text"] for t in texts]
    for answer in answers[-4:]:
        assert b"\r\nconnection: close\r\n" in answer  # the server said it was leaving
    assert late_answer[:2] == (200, "close")
    assert json.loads(late_answer[2])["data"]["model"]["name"] == "project-tagger"  # GET /, answered whole
    assert took < graceful + 5


def test_max_requests_with_jitter_recycles_workers(model_store: Path, tmp_path: Path):
    """``max_requests`` is honoured under the Uvicorn worker, each worker drawing its own jitter."""
    env = {
        "COE_MODEL_STORE": str(model_store),
        "GUNICORN_CMD_ARGS": "--max-requests 20 --max-requests-jitter 10",
    }
    log = tmp_path / "server.log"
    statuses: Counter = Counter()
    with gunicorn(env, log, workers=1) as (base, master):
        seen = {*worker_pids(master.pid)}
        for _ in range(100):
            statuses[httpx.post(f"{base}/predictions", json=ONE, timeout=10).status_code] += 1
            seen.update(worker_pids(master.pid))
        # An access line is written once its answer is sent: the server is killed (SIGKILL) on leaving
        # this block, so the last line is waited for, not raced against.
        wait_until(lambda: log.read_text().count(" POST /predictions ") >= 100, 10, log.read_text)
    text = log.read_text()
    limits = {
        int(pid): int(n)
        for pid, n in re.findall(r"\[(\d+)\] \S+ -?\S*:? ?Maximum request limit of (\d+) exceeded", text)
    }
    # Every request a worker answered, the readiness check's GET / included: uvicorn counts them all.
    answered = Counter(int(pid) for pid in re.findall(r"INFO \[(\d+)\] coe\.access \S+ [A-Z]+ /", text))
    served = Counter(
        int(pid) for pid in re.findall(r"INFO \[(\d+)\] coe\.access \S+ POST /predictions ", text)
    )
    print(f"\nmax_requests 20 + jitter 10, 100 requests: workers recycled after {limits}; {statuses}")
    assert statuses == {200: 100}
    assert sum(served.values()) == 100  # each answer logged once, by the worker that gave it
    # Each worker drew its own limit in 20..30 and was recycled once it had served that many: with one
    # worker at a time, 100 requests make 3 to 5 of them reach their limit.
    assert 3 <= len(limits) <= 5 and all(20 <= limit <= 30 for limit in limits.values())
    assert all(answered[pid] >= limit for pid, limit in limits.items()), (limits, answered)
    # Every worker that served was seen, and all but the last one serving were recycled.
    assert set(served) <= seen
    assert len(set(served) - set(limits)) <= 1, (limits, served)

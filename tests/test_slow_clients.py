"""Slow clients against the real server: they cost a connection each, never a request thread.

Before the body deadline, 30 connections trickling a ``text/csv`` body held all of
Connexion's request threads: 0 of 4 predictions answered in 20 s.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import gunicorn

SLOW = 30  # connections of each kind
PREDICTIONS = 8
#: The deadlines under test: longer than predictions may take here, so they cannot pass by waiting them out.
BODY_TIMEOUT = 8.0
HEADER_TIMEOUT = 8.0
DECLARED = 1_000_000  # bytes of CSV each slow body announces
MIN_RATE = 1_000_000  # bytes/s: the deadline grows by DECLARED / MIN_RATE
BODY_DEADLINE = BODY_TIMEOUT + DECLARED / MIN_RATE


@pytest.fixture(scope="module")
def server(model_store: Path, tmp_path_factory: pytest.TempPathFactory):
    env = {"COE_MODEL_STORE": str(model_store), "COE_BODY_TIMEOUT": str(BODY_TIMEOUT),
           "COE_BODY_MIN_RATE": str(MIN_RATE), "COE_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    with gunicorn(env, tmp_path_factory.mktemp("slow") / "server.log", workers=2) as (base, _process):
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, float]:
    """Status, headers and body of the one response the server sends before closing, and when it came.

    Read as soon as it arrives: a byte trickled after the server closed would draw a
    reset that can discard an unread response.
    """
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    arrived = time.monotonic()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body, arrived


def trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    """One byte per connection every second, as long as the server keeps it open."""
    while not stop.wait(1.0):
        for sock in sockets:
            try:
                sock.send(b"a")
            except OSError:
                pass  # answered and closed: the reader sees why


def test_slow_bodies_and_headers_hold_no_request_thread(server):
    slow_bodies, slow_headers = [], []
    started = time.monotonic()
    for _ in range(SLOW):
        sock = connect(server)
        sock.sendall(b"POST /batch-predictions HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
                     + f"Content-Length: {DECLARED}\r\n\r\nid,text\n".encode())
        slow_bodies.append(sock)
        sock = connect(server)
        sock.sendall(b"GET /models HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        slow_headers.append(sock)
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(slow_bodies + slow_headers, stop))
    readers = ThreadPoolExecutor(2 * SLOW)
    body_answers = [readers.submit(read_response, sock) for sock in slow_bodies]
    header_answers = [readers.submit(read_response, sock) for sock in slow_headers]
    trickler.start()
    try:
        time.sleep(1)  # every slow request has reached a worker

        def predict(_: int) -> tuple[int, float]:
            sent = time.monotonic()
            response = httpx.post(f"{server}/predictions", json={"texts": [{"text": "object detection"}]},
                                  timeout=30)
            return response.status_code, time.monotonic() - sent

        with ThreadPoolExecutor(PREDICTIONS) as pool:
            answers = list(pool.map(predict, range(PREDICTIONS)))
        assert time.monotonic() - started < min(BODY_DEADLINE, HEADER_TIMEOUT), \
            "predictions were answered only once the slow clients were dropped"
        assert [status for status, _ in answers] == [200] * PREDICTIONS
        slowest = max(seconds for _, seconds in answers)
        print(f"\n{SLOW} slow bodies + {SLOW} slow header sections open: {PREDICTIONS} concurrent predictions "
              f"answered 200, the slowest in {slowest:.2f} s")
        assert slowest < 5, f"predictions waited {slowest:.1f} s behind slow clients"

        # Each slow body is refused once its deadline passes, with a problem saying so.
        for answer in body_answers:
            status, headers, body, arrived = answer.result(timeout=60)
            assert status == 408
            assert headers["content-type"] == "application/problem+json"
            assert headers["connection"] == "close"
            problem = json.loads(body)
            assert problem["type"] == "/problems/request-timeout"
            assert problem["title"] == "Request Timeout"
            assert problem["detail"].startswith(
                f"the request body ({DECLARED} bytes declared) did not arrive within {BODY_DEADLINE:g} s")
            # Generous: the deadline is the figure; a loaded machine may add a few seconds.
            assert BODY_DEADLINE - 1 < arrived - started < BODY_DEADLINE + 5
            latest_408 = arrived - started
        # Each slow header section too, by the server before any app sees it.
        for answer in header_answers:
            status, headers, body, arrived = answer.result(timeout=60)
            assert status == 408
            assert body == f"request header section not received within {HEADER_TIMEOUT:g} s".encode()
            assert HEADER_TIMEOUT - 1 < arrived - started < HEADER_TIMEOUT + 5
        print(f"slow bodies answered 408 by {latest_408:.1f} s (deadline {BODY_DEADLINE:g} s), "
              f"slow header sections by {arrived - started:.1f} s (deadline {HEADER_TIMEOUT:g} s)")
    finally:
        stop.set()
        trickler.join()
        for sock in slow_bodies + slow_headers:
            sock.close()
        readers.shutdown(wait=True)

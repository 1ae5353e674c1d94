"""Slow clients against the real server: they cost a connection each, never a request thread.

Before the body deadline, 30 connections trickling a ``text/csv`` body held all of
Connexion's request threads: 0 of 4 predictions answered in 20 s.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import connect, gunicorn

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
    env = {
        "COE_MODEL_STORE": str(model_store),
        "COE_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "COE_BODY_MIN_RATE": str(MIN_RATE),
        "COE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    }
    with gunicorn(env, tmp_path_factory.mktemp("slow") / "server.log", workers=2) as (base, _process):
        yield base


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
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
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
        sock.sendall(
            b"POST /batch-predictions HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
            + f"Content-Length: {DECLARED}\r\n\r\nid,text\n".encode()
        )
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
            response = httpx.post(
                f"{server}/predictions", json={"texts": [{"text": "object detection"}]}, timeout=30
            )
            return response.status_code, time.monotonic() - sent

        with ThreadPoolExecutor(PREDICTIONS) as pool:
            answers = list(pool.map(predict, range(PREDICTIONS)))
        assert time.monotonic() - started < min(BODY_DEADLINE, HEADER_TIMEOUT), (
            "predictions were answered only once the slow clients were dropped"
        )
        assert [status for status, _ in answers] == [200] * PREDICTIONS
        slowest = max(seconds for _, seconds in answers)
        print(
            f"\n{SLOW} slow bodies + {SLOW} slow header sections open: {PREDICTIONS} concurrent predictions "
            f"answered 200, the slowest in {slowest:.2f} s"
        )
        assert slowest < 5, f"predictions waited {slowest:.1f} s behind slow clients"

        # Each slow body is refused once its deadline passes, with a problem saying so.
        for answer in body_answers:
            status, headers, body, arrived = answer.result(timeout=60)
            assert status == 408
            assert headers["content-type"] == "application/problem+json"
            assert headers["connection"] == "close"
            problem = json.loads(body)
            deadline = re.escape(f"{BODY_DEADLINE:g}")
            received = re.fullmatch(
                rf"the request body \({DECLARED} bytes declared\) did not arrive within "
                rf"{deadline} s; received (\d+) bytes",
                problem["detail"],
            )
            assert received and int(received[1]) < DECLARED, problem["detail"]
            assert problem == {
                "type": "/problems/request-timeout",
                "title": "Request Timeout",
                "status": 408,
                "detail": problem["detail"],
                "request_id": headers["x-request-id"],
            }
            # Generous: the deadline is the figure; a loaded machine may add a few seconds.
            assert BODY_DEADLINE - 1 < arrived - started < BODY_DEADLINE + 5
            latest_408 = arrived - started
        # Each slow header section too, by the server before any app sees it.
        for answer in header_answers:
            status, headers, body, arrived = answer.result(timeout=60)
            assert status == 408
            assert headers["content-type"] == "application/problem+json"
            assert headers["x-content-type-options"] == "nosniff"
            assert json.loads(body) == {
                "type": "/problems/request-timeout",
                "title": "Request Timeout",
                "status": 408,
                "detail": f"request header section not received within {HEADER_TIMEOUT:g} s",
                "request_id": headers["x-request-id"],
            }
            assert HEADER_TIMEOUT - 1 < arrived - started < HEADER_TIMEOUT + 5
        print(
            f"slow bodies answered 408 by {latest_408:.1f} s (deadline {BODY_DEADLINE:g} s), "
            f"slow header sections by {arrived - started:.1f} s (deadline {HEADER_TIMEOUT:g} s)"
        )
    finally:
        stop.set()
        trickler.join()
        for sock in slow_bodies + slow_headers:
            sock.close()
        readers.shutdown(wait=True)


# --- a server with small limits: what is bounded is the app's work and the bytes buffered ----------

LIMIT = 4  # requests in progress per worker
UPLOAD = 20_000  # bytes: the largest body
BUDGET = 50_000  # bytes of bodies buffered at once: two uploads, not three


@pytest.fixture(scope="module")
def limited(model_store: Path, tmp_path_factory: pytest.TempPathFactory):
    env = {
        "COE_MODEL_STORE": str(model_store),
        "COE_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "COE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "COE_LIMIT_CONCURRENCY": str(LIMIT),
        "COE_MAX_BODY_BYTES": str(UPLOAD),
        "COE_MAX_UPLOAD_BYTES": str(UPLOAD),
        "COE_MAX_BUFFERED_BYTES": str(BUDGET),
        "COE_BATCH_IN_SERVER": "false",
    }
    with gunicorn(env, tmp_path_factory.mktemp("limited") / "server.log", workers=1) as (base, _process):
        yield base


def csv_of(size: int) -> bytes:
    """A valid CSV upload of exactly ``size`` bytes."""
    rows, n = [b"id,text\n"], 0
    while sum(map(len, rows)) < size - 64:
        n += 1
        rows.append(f"i-{n},deep learning for images\n".encode())
    rows.append(b"last,object detection " + b"x" * (size - sum(map(len, rows)) - 23) + b"\n")
    data = b"".join(rows)
    assert len(data) == size
    return data


def upload_head(size: int) -> bytes:
    return (
        b"POST /batch-predictions HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\nConnection: close\r\n"
        + f"X-Request-ID: upload-{size}\r\nContent-Length: {size}\r\n\r\n".encode()
    )


def test_bodies_beyond_the_process_budget_are_refused_busy_at_once_and_the_budget_comes_back(limited):
    body = csv_of(UPLOAD)
    first, second = connect(limited), connect(limited)
    try:
        for sock in (first, second):  # two uploads under way: 40,000 of 50,000 bytes reserved
            sock.sendall(upload_head(UPLOAD) + body[:1000])
        time.sleep(1)
        with connect(limited) as third:
            sent = time.monotonic()
            third.sendall(upload_head(UPLOAD))
            status, headers, answer, arrived = read_response(third)
        assert arrived - sent < 5, "the third upload waited instead of being refused"
        assert status == 503
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        assert json.loads(answer) == {
            "type": "/problems/busy",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"this server process is already receiving {2 * UPLOAD} bytes of request bodies; "
            f"{UPLOAD} more would exceed its limit of {BUDGET}; retry in a moment",
            "request_id": f"upload-{UPLOAD}",
        }
        # The uploads under way were not disturbed: one completes, the other's client leaves.
        first.sendall(body[1000:])
        assert read_response(first)[0] == 202
        second.close()
    finally:
        first.close()
        second.close()
    # Every reserved byte came back (completion, disconnect): a full-size upload fits again, twice.
    deadline = time.monotonic() + 10
    while (
        status := httpx.post(
            f"{limited}/batch-predictions", content=body, timeout=30, headers={"Content-Type": "text/csv"}
        ).status_code
    ) == 503:
        assert time.monotonic() < deadline, "the budget of the finished uploads was never released"
        time.sleep(0.2)
    assert status == 202
    # One upload fitting shows the completed upload's bytes back; the departed client's may come back a
    # moment later (seen once): wait for them too, then two fit at once.
    deadline = time.monotonic() + 10
    while True:
        with connect(limited) as one, connect(limited) as two:
            one.sendall(upload_head(UPLOAD) + body[:1000])
            two.sendall(upload_head(UPLOAD) + body)
            status = read_response(two)[0]
        if status != 503 or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    assert status == 202, "the departed client's bytes never came back"


def test_many_half_sent_requests_do_not_make_other_requests_refused(limited):
    """Twice the limit of slow header sections and twice of slow bodies: the limit counts only requests in the app.

    Before, the limit counted connections, so these 16 made every other request answered 503
    until the slow ones were dropped.
    """
    slow: list[socket.socket] = []
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(slow, stop))
    started = time.monotonic()
    try:
        for _ in range(2 * LIMIT):
            sock = connect(limited)
            sock.sendall(b"GET /models HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            slow.append(sock)
            sock = connect(limited)
            sock.sendall(
                b"POST /predictions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            slow.append(sock)
        trickler.start()
        time.sleep(1)  # every slow request has reached the worker
        answers = []
        for _ in range(LIMIT):
            sent = time.monotonic()
            response = httpx.post(
                f"{limited}/predictions", json={"texts": [{"text": "object detection"}]}, timeout=30
            )
            answers.append((response.status_code, time.monotonic() - sent))
        assert time.monotonic() - started < min(BODY_TIMEOUT, HEADER_TIMEOUT), (
            "predictions were answered only once the slow clients were dropped"
        )
        assert [status for status, _ in answers] == [200] * LIMIT
        assert max(seconds for _, seconds in answers) < 5
    finally:
        stop.set()
        if trickler.is_alive():
            trickler.join()
        for sock in slow:
            sock.close()


def test_a_refused_body_sent_anyway_is_dropped_not_read_as_requests(limited):
    """Refused before it was read, on a kept-alive connection: one answer, then the connection closes.

    Before, the rest of the body was dropped but the connection then stayed open with no deadline.
    """
    held = [connect(limited) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(upload_head(UPLOAD) + b"id,text\n")
        time.sleep(1)
        smuggled = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
        with connect(limited) as sock:
            sock.sendall(
                b"POST /batch-predictions HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
                + f"Content-Length: {UPLOAD}\r\n\r\n".encode()
            )
            time.sleep(0.5)
            with contextlib.suppress(OSError):  # the server may have closed already
                sock.sendall(smuggled + b"x" * (UPLOAD - len(smuggled)))
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):  # until the server closes, well before the socket's 30 s
                    data += chunk
        assert data.startswith(b"HTTP/1.1 503 ")
        assert data.count(b"HTTP/1.1 ") == 1  # the body's bytes were not read as a request
    finally:
        for sock in held:
            sock.close()

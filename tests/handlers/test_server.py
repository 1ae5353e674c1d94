"""handlers/server.py (the worker class and protocol) and the server settings of config/gunicorn.py, on the real server over raw sockets."""

from __future__ import annotations

import json
import os
import socket
import time
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from gunicorn.ctl.client import ControlClient

from tests.servers import connect, gunicorn, worker_pids
from tests.waiting import wait_until

MAX_HEADER_BYTES = 8192
HEADER_TIMEOUT = 3.0
LIMIT = 4


@pytest.fixture(scope="module")
def server(model_store: Path, tmp_path_factory: pytest.TempPathFactory):
    env = {
        "COE_MODEL_STORE": str(model_store),
        "COE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "COE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "COE_MAX_CONNECTIONS": str(LIMIT),
    }
    with gunicorn(env, tmp_path_factory.mktemp("worker") / "server.log", workers=1) as (base, _process):
        yield base


def exchange_whole(sock: socket.socket, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send a request that closes the connection; the status line, headers and body of the answer."""
    sock.sendall(request)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    return status_line, {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}, body


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    status_line, _, body = exchange_whole(sock, request)
    return int(status_line.split(" ", 2)[1]), body


def refusal(sock: socket.socket, request: bytes) -> tuple[int, str]:
    """A refusal by the server itself: a problem with the same headers as the app's, its status and detail."""
    status_line, headers, body = exchange_whole(sock, request)
    status = int(status_line.split(" ", 2)[1])
    problem = json.loads(body)
    kinds = {400: "bad-request", 408: "request-timeout", 431: "header-section-too-large"}
    assert problem == {
        "type": f"/problems/{kinds[status]}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": problem["detail"],
        "request_id": headers["x-request-id"],
    }
    assert headers["content-type"] == "application/problem+json"
    assert headers["content-length"] == str(len(body))
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["connection"] == "close"
    return status, problem["detail"]


def get_with_header(size: int) -> bytes:
    """A GET / whose header section is ``size`` bytes long."""
    start, end = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def test_no_server_header(server):
    response = httpx.get(f"{server}/", timeout=10)
    assert response.status_code == 200
    assert "server" not in response.headers
    assert "date" in response.headers


def test_a_websocket_upgrade_is_refused(server):
    """The API has no WebSocket: ``ws="none"``, so no WebSocket protocol is reachable."""
    with connect(server) as sock:
        refused = refusal(
            sock,
            b"GET / HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, close\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
    # uvicorn passes it on as a plain request; Flask refuses the upgrade it cannot make.
    assert refused == (400, "The browser (or proxy) sent a request that this server could not understand.")


def test_header_sections_up_to_the_limit_are_served(server):
    with connect(server) as sock:
        assert exchange(sock, get_with_header(MAX_HEADER_BYTES))[0] == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        get_with_header(MAX_HEADER_BYTES + 1),  # complete, within one read
        get_with_header(2 * MAX_HEADER_BYTES)[:-4],  # never completed
    ],
    ids=["complete", "incomplete"],
)
def test_larger_header_sections_are_refused(server, request_bytes):
    with connect(server) as sock:
        assert refusal(sock, request_bytes) == (
            431,
            f"request header section exceeds {MAX_HEADER_BYTES} bytes",
        )
    assert httpx.get(f"{server}/", timeout=10).status_code == 200


def test_an_endless_header_section_is_cut_off_and_told_why(server):
    """Refused after the limit; what the client still sends is read and dropped, so the answer is not lost."""
    with connect(server) as sock:
        refused = refusal(sock, get_with_header(1 << 20)[:-4])
    assert refused == (431, f"request header section exceeds {MAX_HEADER_BYTES} bytes")
    assert httpx.get(f"{server}/", timeout=10).status_code == 200


def test_an_idle_new_connection_is_closed_after_the_header_timeout(server):
    with connect(server) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed, nothing said
        assert HEADER_TIMEOUT - 0.5 < time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_slow_second_request_on_a_kept_alive_connection_times_out(server):
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        time.sleep(1)  # within keepalive (5 s); then the next request, too slowly
        started = time.monotonic()
        refused = refusal(sock, b"GET / HTTP/1.1\r\nHost: te")
        assert refused == (408, f"request header section not received within {HEADER_TIMEOUT:g} s")
        assert HEADER_TIMEOUT - 0.5 < time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_request_the_parser_refuses_is_a_problem_too(server):
    with connect(server) as sock:
        assert refusal(sock, b"GET / HTTP/1.1\r\nHost: test\r\nX-Request-ID: x\x0bInjected\r\n\r\n") == (
            400,
            "Invalid HTTP request received.",
        )


def test_connections_beyond_the_limit_are_answered_503(server):
    held = [connect(server) for _ in range(LIMIT + 1)]  # each counts, idle or not
    try:
        time.sleep(0.5)
        status_line, headers, body = exchange_whole(
            held[-1], b"GET / HTTP/1.1\r\nHost: test\r\nX-Request-ID: over-the-limit\r\n\r\n"
        )
    finally:
        for sock in held:
            sock.close()
    assert status_line == "HTTP/1.1 503 Service Unavailable"
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "1"
    assert headers["connection"] == "close"
    assert headers["x-request-id"] == "over-the-limit"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {
        "type": "/problems/busy",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"this server process has {LIMIT} connections open, its limit; retry in a moment",
        "request_id": "over-the-limit",
    }
    time.sleep(0.5)
    assert httpx.get(f"{server}/", timeout=10).status_code == 200


# --- gunicorn 27's control socket ----------------------------------------------------------------


def test_no_control_socket_unless_asked_for(model_store, tmp_path):
    """By default gunicorn 27 would use ~/.gunicorn/gunicorn.ctl, one path for every instance on the host."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "COE_MODEL_STORE": str(model_store),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": "",
        "GUNICORN_CMD_ARGS": "--log-level debug",  # the master says when it has decided
    }
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    with gunicorn(env, logs[0], workers=1), gunicorn(env, logs[1], workers=1):
        # The master decides after starting its workers, maybe after serving: wait for the decision.
        for log in logs:
            wait_until(lambda: "Control socket disabled" in log.read_text(), 30, f"{log.name}: no decision")  # noqa: B023
        assert list(home.rglob("*")) == []


def test_two_instances_each_answer_on_their_own_control_socket(model_store, tmp_path):
    paths = [tmp_path / "one.ctl", tmp_path / "two.ctl"]
    env = {"COE_MODEL_STORE": str(model_store)}
    with (
        gunicorn({**env, "COE_CONTROL_SOCKET": str(paths[0])}, tmp_path / "one.log", workers=1) as (_, one),
        gunicorn({**env, "COE_CONTROL_SOCKET": str(paths[1])}, tmp_path / "two.log", workers=2) as (_, two),
    ):
        for path, master in zip(paths, (one, two), strict=True):
            # The master opens it in a thread of its own, maybe after serving.
            wait_until(path.exists, 10, f"{path} opened")
            with ControlClient(str(path), timeout=10) as client:
                assert client.send_command("show stats")["pid"] == master.pid
                workers = client.send_command("show workers")
            assert sorted(worker["pid"] for worker in workers["workers"]) == worker_pids(master.pid)
        assert oct(os.stat(paths[0]).st_mode & 0o777) == "0o600"

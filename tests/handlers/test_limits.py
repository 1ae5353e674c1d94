"""BodyDeadline at the ASGI level: a body is read whole within its deadline, then replayed."""

from __future__ import annotations

import asyncio

import pytest
from connexion.exceptions import ProblemException

from handlers.limits import BodyDeadline


def scope(length: int | None) -> dict:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "method": "POST", "path": "/predictions", "headers": headers}


def client(chunks: list[bytes], pause: float = 0.0):
    """An ASGI receive sending ``chunks`` with a pause before each, then a disconnect."""
    messages = [{"type": "http.request", "body": c, "more_body": n < len(chunks) - 1} for n, c in enumerate(chunks)]

    async def receive() -> dict:
        if messages:
            await asyncio.sleep(pause)
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return receive


def run(middleware_args: dict, scope_: dict, receive) -> list[dict]:
    """What the downstream app received, message by message, until the disconnect."""
    seen: list[dict] = []

    async def app(_scope, receive_, _send) -> None:
        while (message := await receive_())["type"] != "http.disconnect":
            seen.append(message)
        seen.append(message)

    async def send(_message) -> None:
        pass

    asyncio.run(BodyDeadline(app, **middleware_args)(scope_, receive, send))
    return seen


def test_a_body_sent_in_pieces_reaches_the_app_whole_then_the_disconnect():
    seen = run({"seconds": 5, "min_rate": 1e6}, scope(9), client([b"abc", b"def", b"ghi"], pause=0.01))
    assert seen == [{"type": "http.request", "body": b"abcdefghi", "more_body": False}, {"type": "http.disconnect"}]


def test_a_request_without_a_body_passes_untouched():
    seen = run({"seconds": 5, "min_rate": 1e6}, scope(None), client([b""]))
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]


def test_a_body_later_than_its_deadline_is_refused_408():
    # 0.2 s plus one second per 1,000 declared bytes (3 bytes: 0.003 s); the body takes 3 x 0.1 s.
    with pytest.raises(ProblemException) as refused:
        run({"seconds": 0.2, "min_rate": 1000}, scope(3), client([b"a", b"b", b"c"], pause=0.1))
    assert refused.value.status == 408
    assert refused.value.headers == {"Connection": "close"}
    assert refused.value.detail.startswith("the request body (3 bytes declared) did not arrive within 0.203 s; "
                                           "received ")


def test_the_deadline_grows_with_the_declared_size():
    # The same pace passes when the body declares enough bytes to earn the time.
    body = [b"x" * 1000] * 3
    seen = run({"seconds": 0.2, "min_rate": 3000}, scope(3000), client(body, pause=0.1))  # 1.2 s for 0.3 s
    assert seen[0]["body"] == b"x" * 3000


def test_a_client_that_leaves_mid_body_reaches_no_app():
    async def leaves() -> dict:
        return {"type": "http.disconnect"}

    assert run({"seconds": 5, "min_rate": 1e6}, scope(10), leaves) == []

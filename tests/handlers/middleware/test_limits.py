"""BodyDeadline, BodyBudget and InFlightLimit at the ASGI level: a body is read whole within its deadline
and the process's budget, then replayed; requests in progress are bounded."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import pytest
from connexion.exceptions import ProblemException

from coe_template.errors import Busy
from handlers.middleware.limits import BodyBudget, BodyDeadline, InFlightLimit


def scope(length: int | None) -> dict:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "method": "POST", "path": "/predictions", "headers": headers}


def client(chunks: list[bytes], pause: float = 0.0):
    """An ASGI receive sending ``chunks`` with a pause before each, then a disconnect."""
    messages = [
        {"type": "http.request", "body": c, "more_body": n < len(chunks) - 1} for n, c in enumerate(chunks)
    ]

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

    asyncio.run(
        BodyDeadline(app, **{"budget": BodyBudget(1 << 20), **middleware_args})(scope_, receive, send)
    )
    return seen


def test_a_body_sent_in_pieces_reaches_the_app_whole_then_the_disconnect():
    seen = run({"seconds": 5, "min_rate": 1e6}, scope(9), client([b"abc", b"def", b"ghi"], pause=0.01))
    assert seen == [
        {"type": "http.request", "body": b"abcdefghi", "more_body": False},
        {"type": "http.disconnect"},
    ]


def test_a_request_without_a_body_passes_untouched():
    seen = run({"seconds": 5, "min_rate": 1e6}, scope(None), client([b""]))
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]


def test_a_body_later_than_its_deadline_is_refused_408():
    # 0.2 s plus one second per 1,000 declared bytes (3 bytes: 0.003 s); the body takes 3 x 0.1 s.
    with pytest.raises(ProblemException) as refused:
        run({"seconds": 0.2, "min_rate": 1000}, scope(3), client([b"a", b"b", b"c"], pause=0.1))
    assert refused.value.status == 408
    assert refused.value.headers == {"Connection": "close"}
    assert refused.value.detail.startswith(
        "the request body (3 bytes declared) did not arrive within 0.203 s; received "
    )


def test_the_deadline_grows_with_the_declared_size():
    # The same pace passes when the body declares enough bytes to earn the time.
    body = [b"x" * 1000] * 3
    seen = run({"seconds": 0.2, "min_rate": 3000}, scope(3000), client(body, pause=0.1))  # 1.2 s for 0.3 s
    assert seen[0]["body"] == b"x" * 3000


def test_a_client_that_leaves_mid_body_reaches_no_app():
    async def leaves() -> dict:
        return {"type": "http.disconnect"}

    assert run({"seconds": 5, "min_rate": 1e6}, scope(10), leaves) == []


# --- the budget of buffered bytes, shared by every request of the process --------------------------


def test_a_body_beyond_the_budget_is_refused_at_once_while_the_others_proceed_then_the_budget_is_free():
    budget = BodyBudget(250)
    done: list[bytes] = []

    async def app(_scope, receive_, _send) -> None:
        done.append((await receive_())["body"])

    async def send(_message) -> None:
        pass

    def slow(chunks: list[bytes]):
        return client(chunks, pause=0.1)

    async def scenario() -> None:
        deadline = BodyDeadline(app, seconds=5, min_rate=1e6, budget=budget)
        first = asyncio.create_task(deadline(scope(100), slow([b"a" * 50, b"a" * 50]), send))
        second = asyncio.create_task(deadline(scope(100), slow([b"b" * 50, b"b" * 50]), send))
        await asyncio.sleep(0.05)  # both are reading: 200 of 250 bytes reserved
        assert budget.reserved == 200
        with pytest.raises(Busy) as refused:
            await deadline(scope(100), slow([b"c" * 100]), send)  # refused before reading anything
        assert refused.value.retry_after == 1
        assert str(refused.value) == (
            "this server process is already receiving 200 bytes of request bodies; "
            "100 more would exceed its limit of 250; retry in a moment"
        )
        await deadline(scope(50), slow([b"d" * 50]), send)  # what fits passes
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    assert sorted(done) == [b"a" * 100, b"b" * 100, b"d" * 50]
    assert budget.reserved == 0


@pytest.mark.parametrize("ending", ["timeout", "disconnect", "app error"])
def test_the_budget_is_released_however_the_request_ends(ending):
    budget = BodyBudget(100)

    async def app(_scope, receive_, _send) -> None:
        await receive_()
        raise RuntimeError("a bug downstream")

    async def leaves() -> dict:
        return {"type": "http.disconnect"}

    receive = {
        "timeout": client([b"a", b"b"], pause=0.3),
        "disconnect": leaves,
        "app error": client([b"x" * 100]),
    }[ending]
    with pytest.raises((ProblemException, RuntimeError)) if ending != "disconnect" else nullcontext():
        asyncio.run(BodyDeadline(app, seconds=0.1, min_rate=1e6, budget=budget)(scope(100), receive, _ignore))
    assert budget.reserved == 0
    # A full-size body is accepted afterwards.
    seen = run({"seconds": 5, "min_rate": 1e6, "budget": budget}, scope(100), client([b"y" * 100]))
    assert seen[0]["body"] == b"y" * 100


def test_a_body_in_one_piece_is_passed_on_without_a_copy():
    body = b"z" * 1000
    seen = run({"seconds": 5, "min_rate": 1e6}, scope(1000), client([body]))
    assert seen[0]["body"] is body


# --- requests in progress ---------------------------------------------------------------------------


def test_requests_beyond_the_limit_in_progress_are_refused_busy_and_the_slot_comes_back():
    release = asyncio.Event()

    async def app(_scope, _receive, _send) -> None:
        await release.wait()

    async def scenario() -> None:
        limit = InFlightLimit(app, limit=2)
        held = [asyncio.create_task(limit(scope(None), client([b""]), _ignore)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Busy) as refused:
            await limit(scope(None), client([b""]), _ignore)
        assert (
            str(refused.value)
            == "this server process has 2 requests in progress, its limit; retry in a moment"
        )
        release.set()
        await asyncio.gather(*held)
        assert limit.in_flight == 0
        await limit(scope(None), client([b""]), _ignore)  # passes again

    asyncio.run(scenario())


def test_an_exempt_path_is_served_at_the_limit():
    release = asyncio.Event()
    served: list[str] = []

    async def app(scope_, _receive, _send) -> None:
        if scope_["path"] == "/predictions":
            await release.wait()
        served.append(scope_["path"])

    async def scenario() -> None:
        limit = InFlightLimit(app, limit=1, exempt=("/livez",))
        held = asyncio.create_task(limit(scope(None), client([b""]), _ignore))
        await asyncio.sleep(0)
        await limit({**scope(None), "method": "GET", "path": "/livez"}, client([b""]), _ignore)
        release.set()
        await held

    asyncio.run(scenario())
    assert served == ["/livez", "/predictions"]


async def _ignore(_message) -> None:
    pass

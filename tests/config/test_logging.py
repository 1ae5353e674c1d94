"""Logs: one access line per request, application lines with the request id, JSON on demand, no secrets."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from config.logging import MAX_MESSAGE, RequestIdFilter, formatter
from config.settings import Settings
from tests.conftest import MODEL, seeded_registry
from tests.servers import gunicorn

ADMIN_KEY = "log-test-admin-key-0123456789"
WRONG_KEY = "log-test-wrong-key-9876543210"


def format_one(log_format: str, message: str, *args: object, secrets: tuple[str, ...] = ()) -> str:
    record = logging.LogRecord("coe.test", logging.WARNING, __file__, 1, message, args, None)
    RequestIdFilter(None if log_format == "json" else "-").filter(record)
    return formatter(log_format, secrets).format(record)


def test_text_lines_carry_time_level_pid_logger_and_request_id():
    line = format_one("text", "keeping %s", "version 3")
    match = re.fullmatch(r"(\S+) WARNING \[(\d+)\] coe\.test -: keeping version 3", line)
    assert match, line
    assert datetime.fromisoformat(match[1]).tzinfo == UTC


def test_json_lines_parse():
    line = json.loads(format_one("json", "keeping %s", "version 3"))
    assert line == {
        "time": line["time"],
        "level": "WARNING",
        "pid": line["pid"],
        "logger": "coe.test",
        "request_id": None,
        "message": "keeping version 3",
    }
    assert datetime.fromisoformat(line["time"]).tzinfo == UTC


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_keys_and_bearer_tokens_are_redacted(log_format):
    line = format_one(
        log_format,
        "headers: %s; key %s",
        {"Authorization": f"Bearer {WRONG_KEY}"},
        ADMIN_KEY,
        secrets=(ADMIN_KEY,),
    )
    assert WRONG_KEY not in line and ADMIN_KEY not in line
    assert line.count("[redacted]") == 2
    if log_format == "json":
        json.loads(line)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_long_message_is_cut_and_says_so(log_format):
    line = format_one(log_format, "refused %r", "x" * 1_000_000)
    message = json.loads(line)["message"] if log_format == "json" else line.split(": ", 1)[1]
    assert (
        message
        == f"refused '{'x' * (MAX_MESSAGE - len('refused ' + chr(39)))}… [{1_000_002 - MAX_MESSAGE + 8} characters cut]"
    )


def test_a_refused_body_is_not_copied_into_the_log(client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = client.post("/predictions", json={"texts": [{"text": "y" * 30_000}]})
    assert "y" * 1000 not in caplog.text
    assert response.json() == {  # the problem too keeps only both ends of the value
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": f"'{'y' * 132} … {'y' * 236}' is too long - 'texts.0.text'",
        "request_id": response.headers["x-request-id"],
    }


def test_the_settings_read_from_the_environment():
    settings = Settings.from_env(
        {
            "COE_LOG_FORMAT": "JSON",
            "COE_LOG_LEVEL": "warning",
            "COE_ACCESS_LOG": "false",
            "COE_READY_TIMEOUT": "0.5",
        }
    )
    assert (settings.log_format, settings.log_level, settings.access_log, settings.ready_timeout) == (
        "json",
        "WARNING",
        False,
        0.5,
    )
    defaults = Settings.from_env({})
    assert (defaults.log_format, defaults.log_level, defaults.access_log, defaults.ready_timeout) == (
        "text",
        "INFO",
        True,
        2.0,
    )


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="COE_LOG_FORMAT must be one of"):
        Settings.from_env({"COE_LOG_FORMAT": "xml"})


# --- the real server, JSON lines -------------------------------------------------------------------


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory, trained_model):
    root = tmp_path_factory.mktemp("json-logs")
    store = root / "store"
    seeded_registry(Settings(model_store=store).db_url, store, trained_model, versions=2).engine.dispose()
    env = {"COE_MODEL_STORE": str(store), "COE_LOG_FORMAT": "json", "COE_ADMIN_KEYS": ADMIN_KEY}
    with gunicorn(env, root / "server.log", workers=1) as (base, _):
        yield base, root / "server.log"


def lines(log: Path, until: Callable[[list[dict]], bool] = lambda records: True) -> list[dict]:
    """The log's records, once ``until`` holds for them (a request's line is written just after its
    response is sent, so a client can be a moment ahead of the log)."""
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if until(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_every_line_is_json_and_each_request_has_one_access_line(json_server):
    base, log = json_server
    response = httpx.post(
        f"{base}/predictions",
        json={"texts": [{"text": "image classification"}]},
        headers={"X-Request-ID": "access-test-1"},
        timeout=10,
    )
    assert response.status_code == 200
    refused = httpx.post(
        f"{base}/predictions",
        content=b"{",
        headers={"X-Request-ID": "access-test-2", "Content-Type": "application/json"},
    )
    assert refused.status_code == 400

    def ours(records: list[dict]) -> list[dict]:
        return [
            r
            for r in records
            if r["logger"] == "coe.access" and r["request_id"] in ("access-test-1", "access-test-2")
        ]

    records = lines(log, until=lambda records: len(ours(records)) >= 2)  # every line parses
    assert all({"time", "level", "pid", "logger", "request_id", "message"} <= set(r) for r in records)
    access = ours(records)
    assert len(access) == 2
    served, bad = sorted(access, key=lambda r: r["request_id"])
    assert served["duration_ms"] > 0
    assert {k: v for k, v in served.items() if k not in ("time", "pid", "duration_ms", "message")} == {
        "level": "INFO",
        "logger": "coe.access",
        "request_id": "access-test-1",
        "method": "POST",
        "route": "/predictions",
        "operation": "predictions.create",
        "status": 200,
        "model": MODEL,
        "model_version": 1,
    }
    assert (bad["status"], bad["model"], bad["model_version"]) == (400, None, None)
    # uvicorn's and gunicorn's own access logs are off: ours is the only one.
    assert not any(r["logger"] in ("uvicorn.access", "gunicorn.access") for r in records)
    assert {r["logger"] for r in records} >= {"gunicorn.error", "coe.access"}


def test_promotions_and_rollbacks_are_logged_with_their_request_id(json_server):
    base, log = json_server
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    url = f"{base}/models/{MODEL}/aliases/production"
    for version, request_id in ((2, "promote-1"), (1, "rollback-1")):
        response = httpx.put(
            url, json={"version": version, "reason": "test"}, headers={**admin, "X-Request-ID": request_id}
        )
        assert response.status_code == 200, response.text
    changes = {
        r["request_id"]: r
        for r in lines(log, until=lambda records: any(r["request_id"] == "rollback-1" for r in records))
        if r["logger"] == "coe_template.registry.registry"
    }
    assert changes["promote-1"]["message"] == f"alias production of '{MODEL}' promoted: version 1 -> 2"
    assert changes["promote-1"]["level"] == "INFO"
    assert changes["rollback-1"]["message"] == f"alias production of '{MODEL}' rolled back: version 2 -> 1"


def test_no_key_reaches_the_log(json_server):
    base, log = json_server
    for key in (ADMIN_KEY, WRONG_KEY):
        httpx.put(
            f"{base}/models/{MODEL}/aliases/staging",
            json={"version": 1},
            headers={"Authorization": f"Bearer {key}"},
        )
        httpx.get(f"{base}/models/{MODEL}", headers={"Authorization": f"Bearer {key}"})
        httpx.get(f"{base}/models?api_key={key}")
    lines(
        log,
        until=lambda records: (
            sum(r["logger"] == "coe.access" and r["route"] == "/models" for r in records) >= 2
        ),
    )  # every request's line is written
    text = log.read_text()
    assert ADMIN_KEY not in text and WRONG_KEY not in text
    assert "Bearer" not in text

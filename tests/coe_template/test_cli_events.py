"""``coe-template events``: the history listed, and its chain verified (or where it breaks, said)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text

from config.settings import Settings
from tests.coe_template.test_cli import NAME, clean, runner_for
from tests.conftest import seeded_registry

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    clean(monkeypatch)


@pytest.fixture
def store(tmp_path, trained_model):
    store = tmp_path / "store"
    seeded_registry(Settings(model_store=store).db_url, store, trained_model, versions=2).engine.dispose()
    return store


def test_events_list_shows_the_model_s_history(store):
    cli = runner_for(store)
    assert cli("models", "promote", NAME, "2", "--reason", "v2 is better").exit_code == 0
    assert cli("models", "rollback", NAME, "--reason", "v2 is worse").exit_code == 0
    result = cli("events", "list", "--model", NAME)
    assert result.exit_code == 0, result.output
    lines = [re.sub(TIME, "TIME", line) for line in result.stdout.splitlines()]
    assert lines == [
        "    1  TIME  system        version.created    -             1",
        "    2  TIME  system        version.trained    -             1",
        "    3  TIME  system        version.created    -             2",
        "    4  TIME  system        version.trained    -             2",
        "    5  TIME  system        alias.set          production    1",
        "    6  TIME  cli           alias.moved        production    1 -> 2    v2 is better",
        "    7  TIME  cli           alias.rolled_back  production    2 -> 1    v2 is worse",
    ]
    only = cli("events", "list", "--model", NAME, "--action", "alias.rolled_back")
    assert [line.split()[0] for line in only.stdout.splitlines()] == ["7"]
    unknown = cli("events", "list", "--model", "nope")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: model 'nope' not found\n")


def test_events_verify_says_ok_or_where_the_chain_breaks(store):
    cli = runner_for(store)
    result = cli("events", "verify")
    assert (result.exit_code, result.stdout) == (0, "OK: 5 events, the chain holds\n")
    # Behind the application's back: the trigger dropped, an event rewritten.
    engine = seeded_engine(store)
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER registry_events_no_update"))
        connection.execute(text("UPDATE registry_events SET to_version = 2 WHERE sequence = 5"))
    engine.dispose()
    result = cli("events", "verify")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "BROKEN at event 5: its hash does not match its contents (4 events before it hold)\n",
    )


def seeded_engine(store):
    return create_engine(Settings(model_store=store).db_url)

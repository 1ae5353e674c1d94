"""The registry's history: every change writes its event in its own transaction, chained, never rewritten."""

from __future__ import annotations

import threading

import pytest
import yaml
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from coe_template.errors import Conflict
from coe_template.model.args import TrainingArgs
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.db import upgrade
from coe_template.registry.events import GENESIS, REASON_LENGTH, event_hash
from coe_template.registry.history import list_events, verify_history
from coe_template.registry.training import TrainingJobs
from handlers.app import SPEC_DIR
from tests.coe_template.registry.test_migrations import downgrade_to
from tests.conftest import MODEL, seeded_registry


@pytest.fixture
def registry(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model, versions=2)
    yield registry
    registry.engine.dispose()


def actions(registry: Registry) -> list[tuple]:
    page, _ = list_events(registry, MODEL, limit=100)
    return [(e.sequence, e.actor, e.action, e.alias, e.from_version, e.to_version, e.reason) for e in page]


def test_every_change_writes_its_event_chained_to_the_last(registry, trained_model):
    registry.set_alias(MODEL, "staging", 2, reason="try it")
    registry.set_alias(MODEL, PRODUCTION, 2, reason="better")
    registry.delete_alias(MODEL, "staging")
    registry.archive_version(MODEL, 1)
    registry.archive_version(MODEL, 1)  # already archived: nothing changes, nothing recorded
    jobs = TrainingJobs(registry)
    jobs.create(MODEL, TrainingArgs())
    jobs.cancel(MODEL, 3)
    assert actions(registry) == [
        (1, "system", "version.created", None, None, 1, None),
        (2, "system", "version.trained", None, None, 1, None),
        (3, "system", "version.created", None, None, 2, None),
        (4, "system", "version.trained", None, None, 2, None),
        (5, "system", "alias.set", PRODUCTION, None, 1, None),
        (6, "system", "alias.set", "staging", None, 2, "try it"),
        (7, "system", "alias.moved", PRODUCTION, 1, 2, "better"),
        (8, "system", "alias.removed", "staging", 2, None, None),
        (9, "system", "version.archived", None, None, 1, None),
        (10, "system", "version.created", None, None, 3, None),
        (11, "system", "version.failed", None, None, 3, None),
    ]
    page, _ = list_events(registry, MODEL, limit=100)
    assert page[0].previous_hash == GENESIS
    for before, event in zip([None, *page], page, strict=False):
        assert event.previous_hash == (GENESIS if before is None else before.hash)
        assert event.hash == event_hash(vars(event))
    assert (verify_history(registry).count, verify_history(registry).broken_at) == (11, None)


def test_a_refused_change_writes_no_event(registry):
    registry.set_alias(MODEL, PRODUCTION, 2, reason="r")
    registry.archive_version(MODEL, 1)
    with pytest.raises(Conflict):
        registry.set_alias(MODEL, PRODUCTION, 1, reason="back")
    with pytest.raises(Conflict):
        registry.archive_version(MODEL, 2)  # production points at it
    assert [a[2] for a in actions(registry)][-2:] == ["alias.moved", "version.archived"]


def test_events_page_and_filter(registry):
    page, after = list_events(registry, MODEL, limit=2)
    assert ([e.sequence for e in page], after) == ([1, 2], 2)
    page, after = list_events(registry, MODEL, after=after, limit=2)
    assert ([e.sequence for e in page], after) == ([3, 4], 4)
    page, after = list_events(registry, MODEL, after=after, limit=2)
    assert ([e.sequence for e in page], after) == ([5], None)
    page, _ = list_events(registry, MODEL, action="version.trained")
    assert [e.to_version for e in page] == [1, 2]
    page, _ = list_events(registry, MODEL, since=page[-1].at)
    assert [e.sequence for e in page] == [4, 5]


@pytest.mark.parametrize(
    "statement", ["UPDATE registry_events SET reason = 'x'", "DELETE FROM registry_events"]
)
def test_nothing_updates_or_deletes_an_event(registry, statement):
    with pytest.raises(DBAPIError) as refused, registry.engine.begin() as connection:
        connection.execute(text(statement))
    assert "registry_events is append-only: events are never updated or deleted" in str(refused.value)
    assert verify_history(registry).count == 5


def tamper(registry: Registry, statement: str) -> None:
    """Edit the history behind the application's back: with its trigger out of the way."""
    with registry.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE registry_events DISABLE TRIGGER USER"))
            connection.execute(text(statement))
            connection.execute(text("ALTER TABLE registry_events ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER registry_events_no_update"))
            connection.execute(text("DROP TRIGGER registry_events_no_delete"))
            connection.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "broken_at", "why"),
    [
        (
            "UPDATE registry_events SET to_version = 2 WHERE sequence = 5",
            5,
            "its hash does not match its contents",
        ),
        (
            "UPDATE registry_events SET actor = 'someone' WHERE sequence = 2",
            2,
            "its hash does not match its contents",
        ),
        ("DELETE FROM registry_events WHERE sequence = 3", 3, "event 3 is missing (the next is 4)"),
        (
            "UPDATE registry_events SET previous_hash = hash WHERE sequence = 4",
            4,
            "its previous_hash is not the hash of the event before it",
        ),
    ],
)
def test_verify_says_where_an_edited_history_breaks(registry, statement, broken_at, why):
    tamper(registry, statement)
    found = verify_history(registry)
    assert (found.count, found.broken_at, found.why) == (broken_at - 1, broken_at, why)


def test_concurrent_writers_do_not_fork_the_chain(registry):
    """Writers in threads, each its own transaction: every event gets its own number, chained in order."""
    errors: list[BaseException] = []

    def move(alias: str) -> None:
        try:
            for n in range(5):
                registry.set_alias(MODEL, alias, 1 + n % 2, reason=f"{alias} {n}")
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(f"a{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = verify_history(registry)
    assert (found.count, found.broken_at) == (5 + 4 * 5, None)


def test_the_reason_bound_is_the_spec_s():
    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    assert spec["components"]["schemas"]["Reason"]["maxLength"] == REASON_LENGTH


def test_0011_records_the_aliases_standing_and_goes_away_again(empty_database_url, tmp_path, trained_model):
    registry = seeded_registry(empty_database_url, tmp_path / "store", trained_model, versions=2)
    registry.set_alias(MODEL, "staging", 2)
    registry.engine.dispose()
    engine = create_engine(empty_database_url)
    try:
        downgrade_to(engine, "0010")
        assert "registry_events" not in inspect(engine).get_table_names()
        upgrade(engine)
    finally:
        engine.dispose()
    registry = Registry.open(empty_database_url, tmp_path / "store")
    try:
        assert actions(registry) == [
            (
                1,
                "migration",
                "alias.set",
                PRODUCTION,
                None,
                1,
                "recorded as it stood when the history began (migration 0011)",
            ),
            (
                2,
                "migration",
                "alias.set",
                "staging",
                None,
                2,
                "recorded as it stood when the history began (migration 0011)",
            ),
        ]
        assert (verify_history(registry).count, verify_history(registry).broken_at) == (2, None)
        registry.set_alias(MODEL, PRODUCTION, 2)  # chained onto the recorded ones
        assert (verify_history(registry).count, verify_history(registry).broken_at) == (3, None)
    finally:
        registry.engine.dispose()

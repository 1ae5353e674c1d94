"""``GET /models/{model-name}/events``: the model's history, a page at a time, filtered."""

from __future__ import annotations

from datetime import datetime

import pytest

from coe_template.registry.events import event_hash
from handlers.security import key_id
from tests.conftest import ADMIN, ADMIN_KEY, MODEL

EVENTS = f"/models/{MODEL}/events"


def brief(events: list[dict]) -> list[tuple]:
    return [
        (e["sequence"], e["actor"], e["action"], e["alias"], e["from_version"], e["to_version"])
        for e in events
    ]


def test_events_come_a_page_at_a_time(registry_client, assert_envelope):
    response = registry_client.put(
        f"/models/{MODEL}/aliases/staging", json={"version": 2}, headers={**ADMIN, "X-Request-ID": "stage-2"}
    )
    assert_envelope(response, "PUT")
    first = assert_envelope(registry_client.get(EVENTS, params={"page_size": 4}))
    assert first["next_page_token"] == "4"
    rest = assert_envelope(registry_client.get(EVENTS, params={"page_size": 4, "page_token": "4"}))
    assert rest["next_page_token"] is None
    events = first["events"] + rest["events"]
    assert brief(events) == [
        (1, "system", "version.created", None, None, 1),
        (2, "system", "version.trained", None, None, 1),
        (3, "system", "version.created", None, None, 2),
        (4, "system", "version.trained", None, None, 2),
        (5, "system", "alias.set", "production", None, 1),
        (6, key_id(ADMIN_KEY), "alias.set", "staging", None, 2),
    ]
    assert events[-1]["request_id"] == "stage-2"
    assert set(events[-1]) == {
        "sequence", "at", "actor", "action", "model", "alias", "from_version", "to_version",
        "reason", "request_id", "previous_hash", "hash",
    }  # fmt: skip
    for before, event in zip(events, events[1:], strict=False):  # a client can check the chain itself
        assert event["previous_hash"] == before["hash"]
        assert event["hash"] == event_hash({**event, "at": datetime.fromisoformat(event["at"])})


def test_events_filter_by_action_and_time(registry_client, assert_envelope):
    trained = assert_envelope(registry_client.get(EVENTS, params={"action": "version.trained"}))["events"]
    assert brief(trained) == [
        (2, "system", "version.trained", None, None, 1),
        (4, "system", "version.trained", None, None, 2),
    ]
    since = assert_envelope(registry_client.get(EVENTS, params={"since": trained[1]["at"]}))["events"]
    assert [e["sequence"] for e in since] == [4, 5]


@pytest.mark.parametrize(
    ("params", "detail", "kind"),
    [
        ({"action": "alias.renamed"}, None, None),
        (
            {"since": "last week"},
            "since='last week' is not an RFC 3339 time such as 2026-12-08T02:30:00Z",
            "invalid-input",
        ),
        ({"page_size": 0}, "0 is less than the minimum of 1 - query parameter 'page_size'", None),
        ({"page_token": "x"}, "'x' does not match '^[0-9]{1,9}$' - query parameter 'page_token'", None),
    ],
)
def test_bad_queries_are_refused(registry_client, assert_problem, params, detail, kind):
    if detail is None:
        detail = (
            "'alias.renamed' is not one of ['version.created', 'version.trained', 'version.failed', "
            "'version.archived', 'version.deleted', 'alias.set', 'alias.moved', 'alias.removed', "
            "'alias.rolled_back'] - query parameter 'action'"
        )
    assert_problem(registry_client.get(EVENTS, params=params), 400, detail, kind=kind)


def test_an_unknown_model_has_no_events(registry_client, assert_problem):
    assert_problem(registry_client.get("/models/nope/events"), 404, "model 'nope' not found")

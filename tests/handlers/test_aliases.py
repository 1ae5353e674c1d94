import hashlib
from datetime import UTC, datetime

import pytest

from coe_template.artifacts.runs import MODEL_FILE
from coe_template.registry.events import GENESIS, event_hash
from handlers.security import key_id
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, READ_KEY
from tests.problems import shortened

ALIASES = f"/models/{MODEL}/aliases"


def test_lists_aliases(registry_client, assert_envelope):
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1}


def test_promotion_is_idempotent_and_the_rollback_is_a_put(registry_client, assert_envelope):
    for _ in range(2):
        data = assert_envelope(
            registry_client.put(f"{ALIASES}/production", json={"version": 2, "reason": "v2"}, headers=ADMIN),
            method="PUT",
        )
        assert data == {"alias": "production", "version": 2}
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 2
    assert_envelope(
        registry_client.put(f"{ALIASES}/production", json={"version": 1, "reason": "back"}, headers=ADMIN),
        method="PUT",
    )
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1


def test_any_alias_name_can_be_created_and_deleted(registry_client, assert_envelope, assert_problem):
    assert_envelope(
        registry_client.put(f"{ALIASES}/staging", json={"version": 2}, headers=ADMIN), method="PUT"
    )
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1, "staging": 2}
    data = assert_envelope(registry_client.delete(f"{ALIASES}/staging", headers=ADMIN), method="DELETE")
    assert data == {"alias": "staging", "version": 2}
    assert_problem(registry_client.get(f"{ALIASES}/staging"), 404, f"model {MODEL!r} has no alias 'staging'")


def test_production_cannot_be_deleted(registry_client, assert_problem):
    assert_problem(
        registry_client.delete(f"{ALIASES}/production", headers=ADMIN),
        409,
        "the 'production' alias cannot be deleted: point it at another version instead",
    )


@pytest.mark.parametrize(
    ("version", "status", "detail"),
    [
        (3, 404, f"model {MODEL!r} has no version 3"),
        (0, 400, "0 is less than the minimum of 1 - 'version'"),
        ("2", 400, "'2' is not of type 'integer' - 'version'"),
    ],
)
def test_bad_versions_are_refused(registry_client, assert_problem, version, status, detail):
    response = registry_client.put(f"{ALIASES}/production", json={"version": version}, headers=ADMIN)
    assert_problem(response, status, detail)


def test_unknown_fields_are_refused(registry_client, assert_problem):
    body = {"version": 2, "reason": "v2", "force": True}
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json=body, headers=ADMIN),
        400,
        "Additional properties are not allowed ('force' was unexpected)",
    )


def test_unknown_alias_is_a_404(registry_client, assert_problem):
    detail = f"model {MODEL!r} has no alias 'canary'"
    assert_problem(registry_client.get(f"{ALIASES}/canary"), 404, detail)
    assert_problem(registry_client.delete(f"{ALIASES}/canary", headers=ADMIN), 404, detail)


def test_alias_names_outside_the_pattern_are_refused(registry_client, assert_problem):
    assert_problem(
        registry_client.put(f"{ALIASES}/Prod_1", json={"version": 2}, headers=ADMIN),
        400,
        "'Prod_1' does not match '^[a-z][a-z0-9-]{0,62}$' - path parameter 'alias'",
    )


def test_a_tampered_version_is_refused_and_production_stays(
    registry_store, registry_client, assert_problem, assert_envelope
):
    run_id = registry_store.get_version(MODEL, 2).run_id
    model_file = registry_store.store / "runs" / run_id / MODEL_FILE
    data = bytearray(model_file.read_bytes())
    recorded = hashlib.sha256(data).hexdigest()
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json={"version": 2, "reason": "v2"}, headers=ADMIN),
        503,
        f"run {run_id}: {MODEL_FILE} does not match its recorded sha256 (expected {recorded}, "
        f"found {hashlib.sha256(data).hexdigest()}); refusing to load it",
        kind="model-files-unverified",
    )
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1
    assert assert_envelope(registry_client.get("/"))["model"]["version"] == 1


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "No authorization token provided"),
        ({"Authorization": "Bearer not-a-key-not-a-key"}, 401, "Provided token is not valid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "No authorization token provided"),
        ({"Authorization": f"Bearer {READ_KEY}"}, 403, "this key may only read: send an admin key"),
    ],
)
def test_changes_need_an_admin_key(registry_client, assert_problem, assert_envelope, headers, status, detail):
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=headers), status, detail
    )
    assert_problem(registry_client.delete(f"{ALIASES}/production", headers=headers), status, detail)
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1


# --- reasons, history, rollbacks --------------------------------------------------------------------

KEY_ID = key_id(ADMIN_KEY)


def test_moving_production_needs_a_reason_other_aliases_do_not(
    registry_client, assert_problem, assert_envelope
):
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=ADMIN),
        400,
        "moving 'production' needs a reason (1 to 500 characters): say why",
        kind="invalid-input",
    )
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json={"version": 2, "reason": " \t"}, headers=ADMIN),
        400,
        "' \\t' does not match '\\\\S' - 'reason'",
    )
    assert_problem(
        registry_client.put(f"{ALIASES}/production", json={"version": 2, "reason": "x" * 501}, headers=ADMIN),
        400,
        shortened(f"'{'x' * 501}' is too long - 'reason'"),
    )
    # Pointing production where it points already moves nothing: no reason needed, nothing recorded.
    data = assert_envelope(
        registry_client.put(f"{ALIASES}/production", json={"version": 1}, headers=ADMIN), "PUT"
    )
    assert data == {"alias": "production", "version": 1}
    data = assert_envelope(
        registry_client.put(f"{ALIASES}/staging", json={"version": 2}, headers=ADMIN), "PUT"
    )
    assert data == {"alias": "staging", "version": 2}
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1, "staging": 2}
    assert [e["action"] for e in history(registry_client, assert_envelope, "production")] == ["alias.set"]


def history(client, assert_envelope, alias: str) -> list[dict]:
    return assert_envelope(client.get(f"{ALIASES}/{alias}/history"))["events"]


def test_an_alias_history_says_who_moved_it_when_and_why(registry_client, assert_envelope):
    response = registry_client.put(
        f"{ALIASES}/production",
        json={"version": 2, "reason": "  v2 is better on new projects "},
        headers={**ADMIN, "X-Request-ID": "promote-2"},
    )
    assert_envelope(response, "PUT")
    events = history(registry_client, assert_envelope, "production")
    for event in events:
        assert datetime.fromisoformat(event["at"]).tzinfo is not None
        assert event["hash"] == event_hash({**event, "at": datetime.fromisoformat(event["at"])})
    assert events[1]["previous_hash"] != GENESIS  # chained onto the seeding's events
    assert [{k: v for k, v in e.items() if k not in ("at", "hash", "previous_hash")} for e in events] == [
        {
            "sequence": 5,
            "actor": "system",
            "action": "alias.set",
            "model": MODEL,
            "alias": "production",
            "from_version": None,
            "to_version": 1,
            "reason": None,
            "request_id": None,
        },
        {
            "sequence": 6,
            "actor": KEY_ID,
            "action": "alias.moved",
            "model": MODEL,
            "alias": "production",
            "from_version": 1,
            "to_version": 2,
            "reason": "v2 is better on new projects",
            "request_id": "promote-2",
        },
    ]
    assert ADMIN_KEY not in str(events)


def test_what_an_alias_pointed_at_in_the_past(registry_client, assert_envelope, assert_problem):
    before = assert_envelope(registry_client.get(f"/models/{MODEL}/events"))["events"][0]["at"]
    set_at = history(registry_client, assert_envelope, "production")[0]["at"]
    assert_envelope(
        registry_client.put(f"{ALIASES}/production", json={"version": 2, "reason": "v2"}, headers=ADMIN),
        "PUT",
    )
    moved_at = history(registry_client, assert_envelope, "production")[1]["at"]
    at = lambda moment: registry_client.get(f"{ALIASES}/production", params={"at": moment})  # noqa: E731
    assert assert_envelope(at(set_at)) == {"alias": "production", "version": 1}
    assert assert_envelope(at(moved_at)) == {"alias": "production", "version": 2}
    assert assert_envelope(at(datetime.now(UTC).isoformat())) == {"alias": "production", "version": 2}
    assert_problem(at(before), 404, f"model {MODEL!r} has no alias 'production'")
    assert_problem(
        at("2999-01-01T00:00:00Z"),
        400,
        "at=2999-01-01T00:00:00+00:00 is in the future: the history only knows the past",
        kind="invalid-input",
    )
    for bad in ("yesterday", "2026-12-08", "2026-12-08T02:00:00"):
        assert_problem(
            at(bad),
            400,
            f"at={bad!r} is not an RFC 3339 time such as 2026-12-08T02:30:00Z",
            kind="invalid-input",
        )


def rollback(client, body: dict, headers: dict = ADMIN, alias: str = "production"):
    return client.post(f"{ALIASES}/{alias}/rollbacks", json=body, headers=headers)


def test_a_rollback_goes_back_to_what_served_before(
    registry_client, registry_store, trained_model, assert_envelope
):
    registry_store.register(MODEL, trained_model)  # version 3
    for version in (3, 2):  # 1 -> 3 -> 2: the newest version older than 2 is 1, but 3 served before
        assert_envelope(
            registry_client.put(
                f"{ALIASES}/production", json={"version": version, "reason": "r"}, headers=ADMIN
            ),
            "PUT",
        )
    response = rollback(registry_client, {"reason": "v2 tags every README as docs"})
    assert response.headers["location"] == f"{ALIASES}/production"
    assert assert_envelope(response, "POST", 201) == {
        "alias": "production",
        "version": 3,
        "rolled_back_from": 2,
    }
    last = history(registry_client, assert_envelope, "production")[-1]
    assert (last["action"], last["from_version"], last["to_version"], last["reason"], last["actor"]) == (
        "alias.rolled_back",
        2,
        3,
        "v2 tags every README as docs",
        KEY_ID,
    )
    # Again: what served before the last move (the rollback) was 2.
    assert assert_envelope(rollback(registry_client, {"reason": "again"}), "POST", 201)["version"] == 2
    # Or to a version named.
    response = rollback(registry_client, {"reason": "to the first", "to_version": 1})
    assert assert_envelope(response, "POST", 201) == {
        "alias": "production",
        "version": 1,
        "rolled_back_from": 2,
    }
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1


def test_a_rollback_skips_versions_no_longer_ready(
    registry_client, registry_store, trained_model, assert_envelope
):
    registry_store.register(MODEL, trained_model)  # version 3
    for version in (2, 3):
        assert_envelope(
            registry_client.put(
                f"{ALIASES}/production", json={"version": version, "reason": "r"}, headers=ADMIN
            ),
            "PUT",
        )
    registry_store.archive_version(MODEL, 2)
    response = rollback(registry_client, {"reason": "3 is wrong"})
    assert assert_envelope(response, "POST", 201) == {
        "alias": "production",
        "version": 1,
        "rolled_back_from": 3,
    }


def test_a_rollback_with_nothing_to_go_back_to_is_a_409(registry_client, assert_problem):
    assert_problem(
        rollback(registry_client, {"reason": "r"}),
        409,
        f"'production' of {MODEL!r} has served no other version that is still ready: nothing to roll back to",
    )
    assert_problem(
        rollback(registry_client, {"reason": "r", "to_version": 1}),
        409,
        f"'production' of {MODEL!r} already points at version 1: nothing to roll back",
    )


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        ({}, ADMIN, 400, "'reason' is a required property"),
        ({"reason": ""}, ADMIN, 400, "'' should be non-empty - 'reason'"),
        ({"reason": "r", "to_version": 0}, ADMIN, 400, "0 is less than the minimum of 1 - 'to_version'"),
        ({"reason": "r", "to_version": 9}, ADMIN, 404, f"model {MODEL!r} has no version 9"),
        ({"reason": "r"}, {}, 401, "No authorization token provided"),
        (
            {"reason": "r"},
            {"Authorization": f"Bearer {READ_KEY}"},
            403,
            "this key may only read: send an admin key",
        ),
    ],
)
def test_bad_rollbacks_are_refused(
    registry_client, assert_problem, assert_envelope, body, headers, status, detail
):
    assert_problem(rollback(registry_client, body, headers), status, detail)
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1


def test_unknown_aliases_and_models_have_no_history(registry_client, assert_problem):
    assert_problem(
        registry_client.get(f"{ALIASES}/canary/history"), 404, f"model {MODEL!r} has no alias 'canary'"
    )
    assert_problem(
        rollback(registry_client, {"reason": "r"}, alias="canary"),
        404,
        f"model {MODEL!r} has no alias 'canary'",
    )
    assert_problem(
        registry_client.get("/models/nope/aliases/production/history"), 404, "model 'nope' not found"
    )

import hashlib

import pytest

from coe_template.artifacts.runs import MODEL_FILE
from tests.conftest import ADMIN, MODEL, READ_KEY

ALIASES = f"/models/{MODEL}/aliases"


def test_lists_aliases(registry_client, assert_envelope):
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1}


def test_promotion_is_idempotent_and_the_rollback_is_a_put(registry_client, assert_envelope):
    for _ in range(2):
        data = assert_envelope(
            registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=ADMIN), method="PUT"
        )
        assert data == {"alias": "production", "version": 2}
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 2
    assert_envelope(
        registry_client.put(f"{ALIASES}/production", json={"version": 1}, headers=ADMIN), method="PUT"
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
    body = {"version": 2, "force": True}
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
        registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=ADMIN),
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

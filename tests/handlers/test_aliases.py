import pytest

from tests.conftest import ADMIN, MODEL, READ_KEY

ALIASES = f"/models/{MODEL}/aliases"


def test_lists_aliases(registry_client, assert_envelope):
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1}


def test_promotion_is_idempotent_and_the_rollback_is_a_put(registry_client, assert_envelope):
    for _ in range(2):
        data = assert_envelope(registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=ADMIN),
                               method="PUT")
        assert data == {"alias": "production", "version": 2}
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 2
    assert_envelope(registry_client.put(f"{ALIASES}/production", json={"version": 1}, headers=ADMIN), method="PUT")
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1


def test_any_alias_name_can_be_created_and_deleted(registry_client, assert_envelope, assert_problem):
    assert_envelope(registry_client.put(f"{ALIASES}/staging", json={"version": 2}, headers=ADMIN), method="PUT")
    assert assert_envelope(registry_client.get(ALIASES))["aliases"] == {"production": 1, "staging": 2}
    data = assert_envelope(registry_client.delete(f"{ALIASES}/staging", headers=ADMIN), method="DELETE")
    assert data == {"alias": "staging", "version": 2}
    assert "'staging'" in assert_problem(registry_client.get(f"{ALIASES}/staging"), 404)


def test_production_cannot_be_deleted(registry_client, assert_problem):
    detail = assert_problem(registry_client.delete(f"{ALIASES}/production", headers=ADMIN), 409)
    assert "production" in detail


@pytest.mark.parametrize(("version", "status"), [(3, 404), (0, 400), ("2", 400)])
def test_bad_versions_are_refused(registry_client, assert_problem, version, status):
    assert_problem(registry_client.put(f"{ALIASES}/production", json={"version": version}, headers=ADMIN), status)


def test_unknown_fields_are_refused(registry_client, assert_problem):
    body = {"version": 2, "force": True}
    assert "'force'" in assert_problem(registry_client.put(f"{ALIASES}/production", json=body, headers=ADMIN), 400)


def test_unknown_alias_is_a_404(registry_client, assert_problem):
    assert "'canary'" in assert_problem(registry_client.get(f"{ALIASES}/canary"), 404)
    assert_problem(registry_client.delete(f"{ALIASES}/canary", headers=ADMIN), 404)


def test_alias_names_outside_the_pattern_are_refused(registry_client, assert_problem):
    assert_problem(registry_client.put(f"{ALIASES}/Prod_1", json={"version": 2}, headers=ADMIN), 400)


def test_a_tampered_version_is_refused_and_production_stays(registry_store, registry_client, assert_problem,
                                                            assert_envelope):
    run = registry_store.store / "runs" / registry_store.get_version(MODEL, 2).run_id
    model_file = run / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    detail = assert_problem(registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=ADMIN), 503)
    assert "model.joblib does not match its recorded sha256" in detail
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1
    assert assert_envelope(registry_client.get("/"))["model"]["version"] == 1


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer not-a-key-not-a-key"}, 401),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
    ({"Authorization": f"Bearer {READ_KEY}"}, 403),
])
def test_changes_need_an_admin_key(registry_client, assert_problem, assert_envelope, headers, status):
    assert_problem(registry_client.put(f"{ALIASES}/production", json={"version": 2}, headers=headers), status)
    assert_problem(registry_client.delete(f"{ALIASES}/production", headers=headers), status)
    assert assert_envelope(registry_client.get(f"{ALIASES}/production"))["version"] == 1

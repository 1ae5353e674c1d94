from tests.conftest import MODEL


def test_lists_models_with_their_versions_and_aliases(registry_client, assert_envelope):
    data = assert_envelope(registry_client.get("/models"), path="/models")
    assert [m["name"] for m in data["models"]] == [MODEL]
    model = data["models"][0]
    assert model["latest_version"] == 2
    assert model["version_count"] == 2
    assert model["aliases"] == {"production": 1}


def test_one_model(registry_client, assert_envelope):
    data = assert_envelope(registry_client.get(f"/models/{MODEL}"))
    assert data["model"]["name"] == MODEL
    assert data["model"]["description"] == "Tags projects."


def test_unknown_model_is_a_404_that_names_it(registry_client, assert_problem):
    assert_problem(registry_client.get("/models/no-such-model"), 404, "model 'no-such-model' not found")


def test_model_names_outside_the_pattern_are_refused(registry_client, assert_problem):
    for name in ("Upper", "under_score", "-leading", "a" * 64):
        assert_problem(
            registry_client.get(f"/models/{name}"),
            400,
            f"{name!r} does not match '^[a-z0-9][a-z0-9-]{{0,62}}$' - path parameter 'model-name'",
        )
    # A path never reaches the filesystem: traversal does not even route.
    assert registry_client.get("/models/..%2F..%2Fetc").status_code in (400, 404)

from urllib.parse import unquote

import pytest


def test_health_names_the_serving_run(client, artifacts, assert_envelope):
    data = assert_envelope(client.get("/"), path="/")
    assert data == {"model": {"name": "project-tagger", "version": 1, "run_id": artifacts.run_id}}


def test_unknown_path_is_a_problem(client, assert_problem):
    assert_problem(
        client.get("/no-such-resource"),
        404,
        "'/no-such-resource' not found: no resource of this API has that path (see /docs)",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/batch-predictions/x%0Ay",
        "/batch-predictions/abc%0A",
        "/args/a%0A",
        "/models/a%09b/versions",
        "/batch-predictions/00000000-0000-0000-0000-000000000000/results/a%00b",
    ],
)
def test_a_path_with_a_control_character_names_no_resource(client, assert_problem, path):
    # Connexion's and Flask's routers disagree on such paths: it used to reach a view, and a 500.
    assert_problem(
        client.get(path),
        404,
        f"{unquote(path)!r} not found: no resource of this API has that path (see /docs)",
    )


def test_wrong_method_is_a_problem(client, assert_problem):
    assert_problem(client.delete("/predictions"), 405, "DELETE is not allowed on /predictions: use POST")


def test_swagger_ui_is_rendered_from_the_spec(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    assert "swagger-ui" in page.text.lower()
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert {"/", "/performance", "/args", "/args/{arg}", "/predictions"} <= set(document["paths"])
    assert [t["name"] for t in document["tags"]] == [
        "General",
        "Performance",
        "Arguments",
        "Prediction",
        "Batch",
        "Models",
        "Operations",
        "Problems",
    ]

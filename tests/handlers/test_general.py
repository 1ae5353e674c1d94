import re
from urllib.parse import unquote

import pytest
import yaml

from handlers.app import SPEC_DIR


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


def operations(document: dict) -> set[tuple[str, str, str]]:
    return {
        (path, method, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_swagger_ui_is_rendered_from_the_spec(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text.startswith("<!-- HTML for static distribution bundle build -->")
    assert "<title>Swagger UI</title>" in page.text
    assert re.findall(r'^\s*url: "([^"]*)",$', page.text, re.MULTILINE) == ["/openapi.json"]  # the page reads
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    written = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))
    # Every operation of the file, by path, method and operationId (Connexion resolves the $refs).
    assert operations(document) == operations(written)
    assert len(operations(written)) > 20
    assert [t["name"] for t in document["tags"]] == [
        "General",
        "Performance",
        "Arguments",
        "Prediction",
        "Batch",
        "Models",
        "Quality",
        "Operations",
        "Problems",
    ]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_docs_without_its_slash_says_where_the_swagger_ui_is(client, method):
    # The UI's page loads its assets by relative paths: it is at /docs/, and /docs says so (not an empty 307).
    answer = client.request(method, "/docs", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"], answer.headers["content-type"]) == (
        308,
        "/docs/",
        "text/plain; charset=utf-8",
    )
    assert answer.text == ("The Swagger UI is at /docs/\n" if method == "GET" else "")


def test_the_served_spec_names_the_servers_the_file_names(client):
    written = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))
    assert written["servers"][0]["url"] == "/"
    assert client.get("/openapi.json").json()["servers"] == written["servers"]
    assert yaml.safe_load(client.get("/openapi.yaml").text)["servers"] == written["servers"]


def test_behind_a_proxy_the_served_spec_and_docs_are_under_its_root_path(app):
    # A proxy mounting the service under /tagger passes root_path: the spec's server and the redirect follow it.
    written = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))
    with app.test_client(root_path="/tagger") as client:
        assert client.get("/openapi.json").json()["servers"] == [{**written["servers"][0], "url": "/tagger"}]
        assert client.get("/docs", follow_redirects=False).headers["location"] == "/tagger/docs/"


# --- the envelope's url: a configured public base URL, or a valid Host, never the header's bytes ----


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("api.example.com", "http://api.example.com/batch-predictions?page_size=1"),
        ("api.example.com:8443", "http://api.example.com:8443/batch-predictions?page_size=1"),
        ("10.0.0.7:65535", "http://10.0.0.7:65535/batch-predictions?page_size=1"),
        ("[2001:db8::1]:8000", "http://[2001:db8::1]:8000/batch-predictions?page_size=1"),
        ("[::1]", "http://[::1]/batch-predictions?page_size=1"),
        # Anything else: a relative URL, never the header's bytes.
        ("", "/batch-predictions?page_size=1"),
        ("a:99999999999999999999", "/batch-predictions?page_size=1"),
        ("a:0", "/batch-predictions?page_size=1"),
        ("a:65536", "/batch-predictions?page_size=1"),
        ("a: 80", "/batch-predictions?page_size=1"),
        ("evil.com/path", "/batch-predictions?page_size=1"),
        ("user@evil.com", "/batch-predictions?page_size=1"),
        ("evil.com:80@other", "/batch-predictions?page_size=1"),
        ("two words", "/batch-predictions?page_size=1"),
        ("[2001:db8::g]:8000", "/batch-predictions?page_size=1"),
        ("2001:db8::1", "/batch-predictions?page_size=1"),
        ("[::1", "/batch-predictions?page_size=1"),
        ("évil.com".encode(), "/batch-predictions?page_size=1"),
        ("a" * 63 + ".com:80", "http://" + "a" * 63 + ".com:80/batch-predictions?page_size=1"),
        ("example.com.", "http://example.com./batch-predictions?page_size=1"),
        ('evil.com"><script>', "/batch-predictions?page_size=1"),
    ],
)
def test_the_envelopes_url_names_a_valid_host_or_none(client, host, url):
    body = client.get("/batch-predictions?page_size=1", headers={"Host": host}).json()
    assert body["url"] == url


@pytest.mark.parametrize("host", ["x" * 254, "a" * 64 + ".com"])
def test_a_host_name_too_long_for_dns_is_a_bad_request(client, assert_problem, host):
    """Flask refuses it (its URL adapter encodes the host as IDNA) before any handler runs."""
    assert_problem(
        client.get("/batch-predictions?page_size=1", headers={"Host": host}),
        400,
        "The browser (or proxy) sent a request that this server could not understand.",
    )


def test_a_public_url_is_the_envelopes_base_whatever_the_host(client_for):
    client = client_for(public_url="https://tagger.example.com/coe")
    for host in ("api.example.com", "a:99999999999999999999", "évil.com".encode()):
        body = client.get("/", headers={"Host": host}).json()
        assert body["url"] == "https://tagger.example.com/coe/"

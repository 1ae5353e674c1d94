"""Each problem ``type`` is the address of a page that says what the error means and what to do."""

from __future__ import annotations

import html
import re

import pytest

from handlers.problems import KINDS, TYPE_BASE, meanings


def test_the_spec_table_lists_every_kind_the_app_answers_with_and_no_other():
    assert set(meanings()) == KINDS


def test_each_kind_is_tabled_with_the_status_the_service_answers_it_with():
    from handlers.problems import _BY_STATUS, _DOMAIN

    answered = {kind: status for status, kind in _BY_STATUS.items()} | {
        kind: int(s) for _, s, kind in _DOMAIN
    }
    assert {kind: status for kind, (status, _) in meanings().items()} == answered


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_type_uri_answers_with_its_page(client, kind):
    status, meaning = meanings()[kind]
    response = client.get(TYPE_BASE + kind)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    assert f"<h1><code>{TYPE_BASE}{kind}</code></h1>" in page
    assert re.search(rf"<p>Status {status} [A-Z][A-Za-z ]+\.</p>", page)
    # The spec's Markdown, rendered: text escaped, `code` becomes <code>.
    rendered = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(meaning, quote=False))
    assert f"<p>{rendered}</p>" in page


def test_a_page_in_full(client):
    assert client.get("/problems/storage-full").text == (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>/problems/storage-full: 507 Insufficient Storage'
        "</title></head>\n"
        "<body><h1><code>/problems/storage-full</code></h1>\n"
        "<p>Status 507 Insufficient Storage.</p>\n"
        "<p>the server's disk is full; an operator must act</p>\n"
        '<p>Every kind of error: <a href="/docs">/docs</a>, schema <code>Problem</code>.</p>\n'
        "</body></html>\n"
    )


def test_an_unknown_kind_is_a_404_problem(client):
    response = client.get("/problems/no-such-kind", headers={"X-Request-ID": "pages-1"})
    assert response.status_code == 404
    assert response.json() == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "no problem type '/problems/no-such-kind': every type is listed under /docs",
        "request_id": "pages-1",
    }


def test_the_pages_are_open_where_every_read_needs_a_key(client_for):
    locked = client_for(require_keys_for_reads=True)
    assert locked.get("/problems/unauthorized").status_code == 200
    assert locked.get("/models").status_code == 401


def test_the_spec_example_is_a_real_page(client):
    import yaml

    from handlers.app import SPEC_DIR

    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))
    example = spec["paths"]["/problems/{kind}"]["get"]["responses"]["200"]["content"]["text/html"]["example"]
    assert client.get("/problems/busy").text == example

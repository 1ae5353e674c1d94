"""Every integer parameter of the spec (query, form and path, found in the spec itself) is read from
ASCII digits only: ``int()`` also reads full-width and other Unicode digits, ``1_0``, `` 10 `` and
``+10``, which Connexion passed on as numbers to the handlers."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from handlers.app import SPEC_DIR
from handlers.middleware.request_id import HEADER
from tests.conftest import ADMIN, MODEL

JOB = "00000000-0000-0000-0000-000000000000"
PATH_VALUES = {"model-name": MODEL, "version": "1", "job-id": JOB, "arg": "seed", "alias": "production"}
NOT_ASCII_DIGITS = ["１０", "٣", "1_0", " 10 ", "10 ", "+10", "1e1", "0x1"]


def _resolve(spec: dict, node: Any) -> Any:
    """Follow a ``$ref`` (#/components/...) to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


SPEC = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text(encoding="utf-8"))


def integer_parameters() -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every integer parameter and form field in the spec."""
    found = []
    for path, item in SPEC["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters" or method.startswith("x-"):
                continue
            for parameter in shared + operation.get("parameters", []):
                parameter = _resolve(SPEC, parameter)
                if _resolve(SPEC, parameter.get("schema", {})).get("type") == "integer":
                    found.append((method, path, parameter["in"], parameter["name"]))
            content = _resolve(SPEC, operation.get("requestBody", {})).get("content", {})
            form = _resolve(SPEC, content.get("multipart/form-data", {}).get("schema", {}))
            for name, schema in form.get("properties", {}).items():
                if _resolve(SPEC, schema).get("type") == "integer":
                    found.append((method, path, "form", name))
    return found


PARAMETERS = integer_parameters()


def test_the_spec_has_integer_parameters_of_every_kind():
    assert {where for _, _, where, _ in PARAMETERS} == {"query", "path", "form"}
    assert len(PARAMETERS) >= 10


def fill(path: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


def send(client, method: str, path: str, where: str, name: str, value: str):
    url = fill(path, {**PATH_VALUES, **({name: value} if where == "path" else {})})
    headers = {**ADMIN, HEADER: "int-1"}
    if where == "form":
        files = {"file": ("items.csv", b"id,text\na,some text\n", "text/csv")}
        return client.request(method, url, files=files, data={name: value}, headers=headers)
    params = {name: value} if where == "query" else None
    body = {"items": [{"id": "a", "text": "some text"}]} if url == "/batch-predictions" else None
    if method == "post" and body is None:
        body = {"texts": [{"text": "some text"}]} if url.endswith("/predictions") else {}
    return client.request(method, url, params=params, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "where", "name"), PARAMETERS)
def test_an_integer_that_is_not_ascii_digits_is_refused_naming_its_parameter(
    registry_client, assert_problem, method, path, where, name
):
    for value in NOT_ASCII_DIGITS:
        response = send(registry_client, method, path, where, name, value)
        if where == "path":  # no route takes it
            url = fill(path, {**PATH_VALUES, name: value})
            detail = f"{url!r} not found: no resource of this API has that path (see /docs)"
            assert_problem(response, 404, detail)
        elif where == "query":
            assert_problem(response, 400, f"{value!r} is not of type 'integer' - query parameter {name!r}")
        else:
            assert_problem(
                response, 400, f"Wrong type, expected 'integer' for requestBody parameter {name!r}"
            )
    # ASCII digits are read, and checked against the schema's bounds
    response = send(registry_client, method, path, where, name, "1")
    assert response.status_code < 500 and response.status_code not in (400, 422), response.text
    response = send(registry_client, method, path, where, name, "-1")
    if where == "form":
        assert_problem(response, 400, "-1 is less than the minimum of 1 - 'model_version'")
    else:
        assert_problem(response, 400, f"-1 is less than the minimum of 1 - {where} parameter {name!r}")

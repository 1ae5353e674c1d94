"""The compiled body check accepts and refuses exactly what Connexion's jsonschema validator does."""

from __future__ import annotations

import pytest
from connexion.json_schema import Draft4RequestValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from handlers.validation import _compile

PREDICTIONS = {
    "type": "object", "required": ["texts"], "additionalProperties": False,
    "properties": {"texts": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "required": ["text"], "additionalProperties": False,
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 20}}}}},
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=25),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["text", "texts", "x"]),
                                                                         children, max_size=3),
    max_leaves=12,
)


def accepted_by_connexion(schema: dict, body: object) -> bool:
    return Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).is_valid(body)


def accepted_when_compiled(schema: dict, body: object) -> bool:
    try:
        _compile(schema)(body)
        return True
    except Exception:
        return False


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(json_values, st.fixed_dictionaries({"texts": st.lists(
    st.fixed_dictionaries({"text": st.text(max_size=25)}) | json_values, max_size=4)})))
def test_the_compiled_check_agrees_with_connexion(body):
    assert accepted_when_compiled(PREDICTIONS, body) == accepted_by_connexion(PREDICTIONS, body)


@pytest.mark.parametrize(("keyword", "value"), [("nullable", True), ("readOnly", True), ("format", "date")])
def test_schemas_with_openapi_keywords_are_left_to_jsonschema(keyword, value):
    schema = {"type": "object", "properties": {"a": {"type": "string", keyword: value}}}
    assert _compile(schema) is None


def test_a_refused_body_gets_jsonschemas_message(client, assert_problem):
    detail = assert_problem(client.post("/predictions", json={"texts": [{"text": "ok", "lang": "en"}]}), 400)
    assert "Additional properties are not allowed ('lang' was unexpected)" in detail


# --- bodies Connexion's own parsers would fail on ---------------------------------------------


@pytest.mark.parametrize("path", ["/predictions", "/models/project-tagger/versions/1/predictions"])
def test_a_json_body_that_is_not_utf8_is_a_bad_request(client, assert_problem, path):
    response = client.post(path, content=b'{"texts": [{"text": "caf\xe9"}]}',
                           headers={"Content-Type": "application/json"})
    assert "request body is not UTF-8 JSON" in assert_problem(response, 400)


def test_a_multipart_body_without_a_boundary_is_a_bad_request(client, assert_problem):
    response = client.post("/batch-predictions", content=b'{"items": []}',
                           headers={"Content-Type": "multipart/form-data"})
    assert "malformed multipart/form-data body: Missing boundary" in assert_problem(response, 400)

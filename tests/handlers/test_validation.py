"""The compiled body check accepts and refuses exactly what Connexion's jsonschema validator does."""

from __future__ import annotations

import dataclasses
import functools
import sys

import marshmallow
import pytest
import yaml
from connexion.exceptions import BadRequestProblem, ProblemException
from connexion.json_schema import Draft4RequestValidator, resolve_refs
from connexion.validators import JSONRequestBodyValidator
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from starlette.datastructures import Headers

from coe_template.batch.items import ITEM_ID, NO_TEXT, _problems
from coe_template.model.args import TrainingArgs, TrainingArgsSchema
from handlers.app import SPEC_DIR
from handlers.middleware.limits import BodySizeLimit
from handlers.middleware.request_id import HEADER
from handlers.validation import MAX_DEPTH, PATTERN_MESSAGE, CompiledJSONBodyValidator, _compile
from tests.conftest import ADMIN, examples
from tests.problems import shortened

PREDICTIONS = {
    "type": "object",
    "required": ["texts"],
    "additionalProperties": False,
    "properties": {
        "texts": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["text"],
                "additionalProperties": False,
                "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 20}},
            },
        }
    },
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=25),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["text", "texts", "x"]), children, max_size=3)
    ),
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


@settings(max_examples=examples(400), deadline=None)
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "texts": st.lists(
                    st.fixed_dictionaries({"text": st.text(max_size=25)}) | json_values, max_size=4
                )
            }
        ),
    )
)
def test_the_compiled_check_agrees_with_connexion(body):
    assert accepted_when_compiled(PREDICTIONS, body) == accepted_by_connexion(PREDICTIONS, body)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("nullable", True),
        ("x-nullable", True),
        ("readOnly", True),
        ("writeOnly", True),
        ("format", "date"),
        ("discriminator", {"propertyName": "a"}),
        ("$ref", "#/components/schemas/A"),
    ],
)
def test_schemas_with_openapi_keywords_are_left_to_jsonschema(keyword, value):
    schema = {"type": "object", "properties": {"a": {"type": "string", keyword: value}}}
    assert _compile(schema) is None
    # In a list too.
    assert _compile({"anyOf": [{"type": "integer"}, {"type": "string", keyword: value}]}) is None


def test_a_body_left_to_jsonschema_is_accepted_or_refused_by_it_alone():
    schema = {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}
    validator = CompiledJSONBodyValidator(schema=schema, encoding="utf-8", strict_validation=True)
    assert _compile(schema) is None
    assert [validator._validate(body) for body in ({"a": None}, {"a": "x"}, {})] == [None, None, None]
    with pytest.raises(BadRequestProblem) as raised:
        validator._validate({"a": 1})
    assert raised.value.detail == "1 is not of type 'string' - 'a'"
    with pytest.raises(BadRequestProblem) as raised:
        validator._validate(None)
    assert raised.value.detail == "Request body must not be empty"


def test_the_components_riding_along_are_not_compiled_nor_looked_into():
    schema = {**PREDICTIONS, "components": {"schemas": {"A": {"type": "string", "nullable": True}}}}
    check = _compile(schema)
    assert check is not None and check is _compile(schema)  # compiled once per schema
    assert check({"texts": [{"text": "a"}]}) == {"texts": [{"text": "a"}]}


def test_the_compiled_check_is_draft_4_where_1_0_is_no_integer():
    import fastjsonschema

    with pytest.raises(fastjsonschema.JsonSchemaException):
        _compile({"type": "integer"})(1.0)


def test_a_body_the_compiled_check_accepts_never_reaches_jsonschema(client, assert_envelope, monkeypatch):
    def refuse(self, body):
        raise AssertionError("jsonschema was asked about a body the compiled check accepts")

    monkeypatch.setattr(JSONRequestBodyValidator, "_validate", refuse)
    data = assert_envelope(
        client.post("/predictions", json={"texts": [{"text": "a chatbot"}]}), method="POST"
    )
    assert [p["input_text"] for p in data["predictions"]] == ["a chatbot"]


def test_a_multipart_body_is_read(client, assert_problem):
    response = client.post("/batch-predictions", files={"file": ("a.csv", b"id,name\n1,x\n", "text/csv")})
    assert_problem(
        response,
        400,
        "the CSV file's header (line 1) needs an id column and a text column (or title and description); found id, name",
        kind="invalid-input",
    )


def test_a_refused_body_gets_jsonschemas_message(client, assert_problem):
    assert_problem(
        client.post("/predictions", json={"texts": [{"text": "ok", "lang": "en"}]}),
        400,
        "Additional properties are not allowed ('lang' was unexpected) - 'texts.0'",
    )


# --- bodies Connexion's own parsers would fail on ---------------------------------------------


@pytest.mark.parametrize("path", ["/predictions", "/models/project-tagger/versions/1/predictions"])
def test_a_json_body_that_is_not_utf8_is_a_bad_request(client, assert_problem, path):
    response = client.post(
        path, content=b'{"texts": [{"text": "caf\xe9"}]}', headers={"Content-Type": "application/json"}
    )
    assert_problem(
        response,
        400,
        "request body is not UTF-8 JSON: 'utf-8' codec can't decode byte 0xe9 in "
        "position 24: invalid continuation byte",
    )


def test_a_multipart_body_without_a_boundary_is_a_bad_request(client, assert_problem):
    response = client.post(
        "/batch-predictions", content=b'{"items": []}', headers={"Content-Type": "multipart/form-data"}
    )
    assert_problem(response, 400, "malformed multipart/form-data body: Missing boundary in multipart.")


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("foo", b"deep learning"),
        ("", b"deep learning"),
        ("latin-1", b"caf\xe9"),
        ("cp1252", b"caf\xe9"),
        ("utf-16", b"deep learning"),
        ("utf-8-" + "x" * 40, b"deep learning"),
    ],
)
@pytest.mark.parametrize(
    "path", ["/predictions", "/models/project-tagger/versions/1/predictions", "/batch-predictions"]
)
def test_a_json_body_in_another_charset_is_refused(client, path, charset, text):
    # Each was a 500: an unknown charset a LookupError, latin-1 a KeyError once Flask read it as UTF-8.
    key = "items" if path == "/batch-predictions" else "texts"
    body = (
        b'{"' + key.encode() + b'": [{"id": "a", "text": "' + text + b'"}]}'
        if key == "items"
        else b'{"texts": [{"text": "' + text + b'"}]}'
    )
    response = client.post(
        path, content=body, headers={"Content-Type": f"application/json;charset={charset}", HEADER: "cs-1"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "type": "/problems/unsupported-media-type",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": f"JSON bodies are UTF-8: send charset=utf-8 or none, not charset={charset[:40]!r}",
        "request_id": "cs-1",
    }


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("utf-8", "café vision"),
        ("UTF-8", "café vision"),
        ("utf8", "café vision"),
        ("utf_8", "café vision"),
        ("us-ascii", "cafe vision"),
        ("ascii", "cafe vision"),
        ("US_ASCII", "cafe vision"),
    ],
)
def test_a_json_body_declared_utf8_is_read(client, charset, text):
    response = client.post(
        "/predictions",
        content=f'{{"texts": [{{"text": "{text}"}}]}}'.encode(),
        headers={"Content-Type": f"application/json;charset={charset}"},
    )
    assert response.status_code == 200, response.text


# --- JSON no operation can use: nested too deeply, integers too long to read -----------------------

#: Every operation that takes a JSON body, with the headers it needs to get as far as parsing it.
JSON_BODY_OPERATIONS = [
    ("POST", "/predictions", {}),
    ("POST", "/models/project-tagger/versions/1/predictions", {}),
    ("POST", "/batch-predictions", {}),
    ("PUT", "/models/project-tagger/aliases/staging", ADMIN),
    ("POST", "/models/project-tagger/versions", ADMIN),
]


def bad_request(detail: str, request_id: str) -> dict:
    return {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "request_id": request_id,
    }


def send(client, method: str, path: str, headers: dict, body: str):
    return client.request(
        method,
        path,
        content=body.encode(),
        headers={**headers, "Content-Type": "application/json", HEADER: "in-1"},
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 1000, 100_000])
@pytest.mark.parametrize(("method", "path", "headers"), JSON_BODY_OPERATIONS)
def test_json_nested_too_deeply_is_a_bad_request(client, method, path, headers, depth):
    response = send(client, method, path, headers, '{"texts":' + "[" * depth + "]" * depth + "}")
    assert response.status_code == 400
    assert response.json() == bad_request(
        f"request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects", "in-1"
    )


@pytest.mark.parametrize(("method", "path", "headers"), JSON_BODY_OPERATIONS)
def test_json_nested_to_the_limit_gets_the_schemas_answer(client, method, path, headers):
    body = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    response = send(client, method, path, headers, body)
    assert response.status_code == 400
    assert response.json() == bad_request(f"{body} is not of type 'object'", "in-1")


@pytest.mark.parametrize(
    "body",
    [
        '{"texts":[{"text":%s}]}',
        '{"items":[],"model_version":%s}',
        "%s",
        '{"version":%s}',
        '{"args":{"seed":%s}}',
    ],
)
@pytest.mark.parametrize(("method", "path", "headers"), JSON_BODY_OPERATIONS)
def test_an_integer_too_long_to_read_is_a_bad_request(client, method, path, headers, body):
    digits = sys.get_int_max_str_digits()
    response = send(client, method, path, headers, body % ("9" * (digits + 1)))
    assert response.status_code == 400
    assert response.json() == bad_request(
        f"request body holds an integer of more than {digits} digits", "in-1"
    )


def test_the_depth_limit_leaves_room_for_every_body_of_the_spec():
    """The deepest body the spec allows is far from the limit."""
    from handlers.validation import _depth_exceeds

    deepest = {"items": [{"id": "a", "text": "b"}], "args": {"seed": 1}}
    assert not _depth_exceeds(deepest, 3)
    assert _depth_exceeds(deepest, 2)
    assert not _depth_exceeds([[[]]], 3) and _depth_exceeds([[[]]], 2)
    assert not _depth_exceeds("text", 0) and not _depth_exceeds([], 1)


# --- every integer a client sends is bounded -------------------------------------------------------


def client_integers(node: object, spec: dict, where: str = "") -> list[tuple[str, dict]]:
    """Every integer schema under ``node``, with where it is, following $refs."""
    if isinstance(node, list):
        return [found for item in node for found in client_integers(item, spec, where)]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return client_integers(target, spec, name)
    found = [(where, node)] if node.get("type") == "integer" else []
    for key, value in node.items():
        if key not in ("example", "examples", "default"):
            found += client_integers(value, spec, where)
    return found


def test_every_integer_a_client_sends_is_bounded():
    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    operations = [
        op for item in spec["paths"].values() for method, op in item.items() if method != "parameters"
    ]
    sent = [item.get("parameters", []) for item in spec["paths"].values()]
    sent += [[op.get("parameters", []), op.get("requestBody", {})] for op in operations]
    integers = client_integers(sent, spec)
    assert len(integers) >= 6  # page sizes, versions in the path, the query, the bodies and the form
    unbounded = [(where, schema) for where, schema in integers if not {"minimum", "maximum"} <= set(schema)]
    assert unbounded == []


# --- "has a text": one definition, the spec's \S, for both validators and the batch items ---------------


@functools.cache
@functools.cache
def spec_schema(name: str) -> dict:
    """A schema of the spec with its ``$ref``s resolved, as Connexion hands it to the validators; one
    dict per schema, since the compiled check is cached by the schema's identity."""
    return resolve_refs(yaml.safe_load((SPEC_DIR / "spec.yaml").read_text()))["components"]["schemas"][name]


def batch_item_has_text(text: str) -> bool:
    return not any("has no text" in problem for problem in _problems(["a"], [text], "items"))


@settings(max_examples=examples(500), deadline=None)
@given(
    text=st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
    | st.text(
        alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u3000\u2028\x00\x01\x7fa"),
        max_size=6,
    )
)
def test_a_text_is_accepted_by_both_validators_exactly_when_a_batch_item_has_text(text):
    schema = spec_schema("PredictionRequest")
    body = {"texts": [{"text": text}]}
    assert (
        accepted_when_compiled(schema, body)
        == accepted_by_connexion(schema, body)
        == batch_item_has_text(text)
    )


def test_a_blank_text_is_refused_in_the_batch_items_words(client, assert_problem):
    """The spec's ``x-pattern-message`` for a text is the batch items' wording, and replaces jsonschema's."""
    text = spec_schema("PredictionRequest")["properties"]["texts"]["items"]["properties"]["text"]
    assert text[PATTERN_MESSAGE] == NO_TEXT
    assert_problem(
        client.post("/predictions", json={"texts": [{"text": "a CNN"}, {"text": " \t"}]}),
        400,
        "' \\t' has no text - 'texts.1.text'",
    )


def test_a_pattern_without_words_of_its_own_keeps_jsonschemas_message(client, assert_problem):
    assert_problem(
        client.post("/batch-predictions", json={"items": [{"id": "a b", "text": "a CNN"}]}),
        400,
        "'a b' does not match '^[A-Za-z0-9._~:@-]{1,200}$' - 'items.0.id'",
    )


# --- the item id: one pattern, the package's, in the spec wherever an item id travels ------------------


def test_every_item_id_pattern_in_the_spec_is_the_batch_items_one():
    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    body_id = spec["components"]["schemas"]["BatchRequest"]["properties"]["items"]["items"]["properties"][
        "id"
    ]
    path_id = next(
        p
        for p in spec["paths"]["/batch-predictions/{job-id}/results/{item-id}"]["parameters"]
        if p.get("name") == "item-id"
    )
    assert body_id["pattern"] == path_id["schema"]["pattern"] == f"^{ITEM_ID.pattern}$"


def test_the_training_arguments_the_spec_names_are_the_packages():
    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    named = spec["components"]["schemas"]["TrainingRequest"]["properties"]["args"]["properties"]
    assert (
        list(named) == [f.name for f in dataclasses.fields(TrainingArgs)] == list(TrainingArgsSchema().fields)
    )


#: The spec's type of each marshmallow field class TrainingArgsSchema uses.
_SPEC_TYPES = {
    marshmallow.fields.Integer: "integer",
    marshmallow.fields.Float: "number",
    marshmallow.fields.String: "string",
    marshmallow.fields.Boolean: "boolean",
}


def spec_of(field: marshmallow.fields.Field) -> dict:
    """What the spec must say of a training argument: its type, bounds and choices, from args.py."""
    schema: dict = {"type": _SPEC_TYPES[type(field)]}
    if field.allow_none:
        schema["nullable"] = True
    for rule in field.validators:
        if isinstance(rule, marshmallow.validate.Range):
            assert rule.min_inclusive and rule.max_inclusive  # the spec below says minimum/maximum, inclusive
            schema.update(minimum=rule.min, maximum=rule.max)
        elif isinstance(rule, marshmallow.validate.OneOf):
            schema["enum"] = list(rule.choices)
        else:
            pytest.fail(f"{rule!r}: a rule the spec cannot state")
    return schema


def test_the_training_arguments_bounds_in_the_spec_are_the_packages():
    """args.py is the one Python home of each bound; the spec states the same for clients."""
    spec = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    named = spec["components"]["schemas"]["TrainingRequest"]["properties"]["args"]["properties"]
    assert named == {name: spec_of(field) for name, field in TrainingArgsSchema().fields.items()}
    assert named["seed"] == {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}  # the comparison compares


# --- integers in the path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/models/project-tagger/versions/{}",
        "/models/project-tagger/versions/{}/args",
        "/models/project-tagger/versions/{}/args/seed",
    ],
)
def test_a_version_in_the_path_too_long_to_read_is_a_bad_request(client, path):
    digits = "9" * (sys.get_int_max_str_digits() + 1)
    response = client.get(path.format(digits), headers={HEADER: "in-10"})
    assert response.status_code == 400
    assert response.json() == bad_request(
        shortened(f"{digits!r} is not of type 'integer' - path parameter 'version'"), "in-10"
    )


@pytest.mark.parametrize(
    ("version", "detail"),
    [
        ("0", "0 is less than the minimum of 1"),
        ("2147483648", "2147483648 is greater than the maximum of 2147483647"),
        ("-1", "-1 is less than the minimum of 1"),
    ],
)
def test_a_version_in_the_path_out_of_range_is_a_bad_request(client, version, detail):
    response = client.get(f"/models/project-tagger/versions/{version}", headers={HEADER: "in-11"})
    assert response.status_code == 400
    assert response.json() == bad_request(f"{detail} - path parameter 'version'", "in-11")


# --- a Content-Length no int() should read ------------------------------------------------------------


BODY = b'{"texts":[{"text":"a model registry"}]}'


@pytest.mark.parametrize("length", ["9" * 4301, "0" * 4301 + str(len(BODY)), "1" * 21])
def test_a_content_length_of_more_digits_than_a_size_has_is_a_bad_request(client, length):
    response = client.post(
        "/predictions",
        content=BODY,
        headers={"Content-Type": "application/json", "Content-Length": length, HEADER: "in-12"},
    )
    assert response.status_code == 400
    assert response.json() == bad_request(
        f"Content-Length must be a number of bytes, not {length[:40]!r}", "in-12"
    )


@pytest.mark.parametrize("length", [b"\xb2", b"\xd9\xa3", b"1e3", b" 5", b"-1", b""])
def test_a_content_length_that_is_not_ascii_digits_is_a_bad_request(length):
    """'²' is a digit to str.isdigit(), not to int()."""
    with pytest.raises(ProblemException) as info:
        BodySizeLimit.check(Headers(raw=[(b"content-length", length)]), 100)
    assert info.value.status == 400
    assert info.value.detail == f"Content-Length must be a number of bytes, not {length.decode('latin-1')!r}"

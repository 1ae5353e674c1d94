"""Every example in the spec is valid against its own schema.

Swagger UI pre-fills requests with these examples and shows them as answers, and
generated clients' docs copy them: an example that breaks its schema teaches a
reader the wrong shape. Each example is found by walking ``openapi/spec.yaml``
(schema ``example``s, a media type's or parameter's or header's ``example`` and
``examples``) and validated as Connexion validates requests and responses: JSON
Schema draft 4 with OpenAPI 3.0's ``nullable``, ``format`` checked, every ``$ref``
resolved within the spec. A failure names the example's JSON pointer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from handlers.app import SPEC_DIR

SPEC: dict[str, Any] = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
BASE = "urn:coe-template:spec"
REGISTRY = Registry().with_resource(BASE, Resource.from_contents(SPEC, default_specification=DRAFT4))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(node: Any) -> Any:
    """An object of the spec that may be a ``$ref`` to another (an Example object, say)."""
    while isinstance(node, dict) and "$ref" in node:
        node = REGISTRY.resolver(BASE).lookup(BASE + node["$ref"]).contents
    return node


def examples(
    node: Any = SPEC, pointer: str = "", in_properties: bool = False
) -> Iterator[tuple[str, str, Any]]:
    """(pointer of the example, pointer of its schema, the example) for every example under ``node``.

    ``in_properties``: ``node`` maps property names to schemas, so its keys are names, not keywords.
    """
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from examples(item, f"{pointer}/{index}")
        return
    if not isinstance(node, dict):
        return
    if not in_properties:
        if "schema" in node:  # a media type, a parameter or a header: its examples follow its schema
            schema = f"{pointer}/schema"
            if "example" in node:
                yield f"{pointer}/example", schema, node["example"]
            for name, example in (node.get("examples") or {}).items():
                yield f"{pointer}/examples/{_escape(name)}", schema, _resolve(example).get("value")
        elif "example" in node:  # a schema with an example of itself
            yield f"{pointer}/example", pointer, node["example"]
    for key, value in node.items():
        if not in_properties and key in ("example", "examples"):
            continue  # an example's own content is data, not spec
        names_follow = key == "properties" and not in_properties
        yield from examples(value, f"{pointer}/{_escape(key)}", in_properties=names_follow)


EXAMPLES = sorted(examples())


def validator(schema_pointer: str) -> Draft4Validator:
    """The validator Connexion would use there: responses may not carry writeOnly properties."""
    cls = Draft4ResponseValidator if "/responses/" in schema_pointer else Draft4RequestValidator
    return cls(
        {"$ref": f"{BASE}#{schema_pointer}"}, registry=REGISTRY, format_checker=Draft4Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize(
    ("pointer", "schema", "example"), EXAMPLES, ids=[pointer for pointer, _, _ in EXAMPLES]
)
def test_example_matches_its_schema(pointer, schema, example):
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(the example itself)'}: {error.message}"
        for error in validator(schema).iter_errors(example)
    ]
    assert not errors, f"the example at {pointer} does not match its schema {schema}:\n" + "\n".join(errors)


def test_every_kind_of_example_is_found():
    """The walk reaches schema, media type, parameter and response examples: it cannot pass by finding none."""
    found = {pointer for pointer, _, _ in EXAMPLES}
    assert {
        "/paths/~1/get/responses/200/content/application~1json/example",  # a response's
        # a request body's
        "/paths/~1models~1{model-name}~1versions/post/requestBody/content/application~1json/example",
        "/components/parameters/AliasName/schema/example",  # a parameter's schema's
        "/components/schemas/Envelope/properties/message/example",  # a property's
        "/components/responses/InternalServerError/content/application~1problem+json/example",  # a problem's
    } <= found


def test_a_wrong_example_fails_with_its_pointer():
    """The check itself: an example that lacks a required member, or is a null the schema forbids, fails."""
    pointer = "/components/schemas/ModelRef"
    assert [e.message for e in validator(pointer).iter_errors({"run_id": "r"})] == [
        "'name' is a required property",
        "'version' is a required property",
    ]
    assert not list(validator("/components/schemas/Version/properties/error").iter_errors(None))  # nullable
    assert list(validator("/components/schemas/Version/properties/run_id").iter_errors(1))
    assert list(validator("/components/schemas/Model/properties/name").iter_errors(None))

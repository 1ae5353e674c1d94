"""JSON request bodies checked by a compiled schema, with jsonschema's errors when one fails.

Connexion validates every JSON body with jsonschema, which builds a validator per
request and walks the schema per element: ~30 µs for one text, ~840 µs for 64,
more than predicting them. ``fastjsonschema`` compiles the same schema to plain
Python once (~1 µs and ~35 µs). A body it accepts is accepted; a body it refuses
is validated again by Connexion's own validator, so clients get jsonschema's 400
messages, except where the spec words a pattern's refusal itself (``x-pattern-message``:
"'   ' has no text", not "'   ' does not match '\\\\S'").

Schemas using what OpenAPI adds to JSON Schema draft 4 (``nullable``, ``readOnly``…)
or ``format`` are left to jsonschema alone: there the two could disagree.

A query, path or header parameter's error names the parameter, as a body's names its path
(``'yes' is not of type 'boolean' - query parameter 'explain'``): Connexion's own says neither.

Integers in queries and forms are ASCII digits with an optional minus, as in paths (where
the schema's ``minimum`` then refuses ``-1`` in the same words): Connexion reads them with
``int()``, which also takes ``１０``, ``1_0``, `` 10 `` and ``+10``. :class:`AsciiIntegers`
leaves such a value as text, which the parameter's validation then refuses, naming it.

Bodies Connexion's parsers fail on with a 500 are answered with a 400 here: JSON that
is not UTF-8, nested deeper than ``MAX_DEPTH`` or holding an integer longer than Python
reads (``sys.get_int_max_str_digits()``), and multipart/form-data without a boundary.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, cast

import fastjsonschema
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, TypeValidationError, UnsupportedMediaTypeProblem
from connexion.json_schema import format_error_with_path
from connexion.uri_parsing import OpenAPIURIParser
from connexion.validators import (
    VALIDATOR_MAP,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
)
from jsonschema import ValidationError
from starlette.formparsers import MultiPartException
from starlette.types import Scope

#: Keywords whose meaning Connexion's validator adds or checks differently.
_NOT_COMPILED = frozenset({"nullable", "x-nullable", "readOnly", "writeOnly", "format", "discriminator"})

#: The spec's wording for a string its ``pattern`` refuses, where jsonschema's ("does not match '\\S'") says little.
PATTERN_MESSAGE = "x-pattern-message"

#: Deepest nesting of arrays and objects a JSON body may have; the spec's deepest body has 3.
MAX_DEPTH = 32


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (a scalar is 0 deep), without recursion."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, (list, dict))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, (list, dict)) for node in level)


#: id(schema) → (schema, compiled check or None); Connexion passes each operation the same dict.
_compiled: dict[int, tuple[dict, Callable[[Any], Any] | None]] = {}


def _uses(schema: Any, keywords: frozenset[str]) -> bool:
    if isinstance(schema, dict):
        return any(key in keywords or _uses(value, keywords) for key, value in schema.items())
    if isinstance(schema, list):
        return any(_uses(value, keywords) for value in schema)
    return False


def _compile(schema: dict) -> Callable[[Any], Any] | None:
    cached = _compiled.get(id(schema))
    if cached is None or cached[0] is not schema:
        # Connexion has resolved every $ref already; the spec's components ride along unused.
        own = {key: value for key, value in schema.items() if key != "components"}
        check = None
        if not _uses(own, _NOT_COMPILED | {"$ref"}):
            # Draft 4, as OpenAPI 3.0 and Connexion's validator: in later drafts 1.0 is an integer.
            check = fastjsonschema.compile({**own, "$schema": "http://json-schema.org/draft-04/schema#"})
        cached = _compiled[id(schema)] = (schema, check)
    return cached[1]


#: The charsets a JSON body may declare: UTF-8 and its ASCII subset.
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class CompiledJSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        # JSON is UTF-8 (RFC 8259 §8.1). Connexion decodes with any declared charset, then Flask
        # reads the bytes as UTF-8 again: an unknown charset was a 500, latin-1 text a KeyError.
        if self._encoding.lower().replace("_", "-") not in _UTF8:
            raise UnsupportedMediaTypeProblem(
                detail=f"JSON bodies are UTF-8: send charset=utf-8 or none, not charset={self._encoding[:40]!r}"
            )
        # Connexion's own parse catches only JSONDecodeError: each of these was a 500.
        try:
            return await super()._parse(stream, scope)
        except UnicodeDecodeError as exc:
            raise BadRequestProblem(detail=f"request body is not UTF-8 JSON: {exc}") from None
        except RecursionError:  # json.loads nests a call per level, up to the interpreter's limit
            raise _too_deep() from None
        except ValueError:  # the one other ValueError json.loads raises: int's digit limit
            raise BadRequestProblem(
                detail=f"request body holds an integer of more than {sys.get_int_max_str_digits()} digits"
            ) from None

    def _validate(self, body: Any) -> dict | None:
        check = _compile(self._schema) if body is not None else None
        if check is not None:
            try:
                check(body)
                return None  # the schema bounds the depth of what it accepts
            except fastjsonschema.JsonSchemaException:
                pass  # let jsonschema say what is wrong, in its words
        # jsonschema quotes the failing value with repr(), which recurses as deep as it nests.
        if _depth_exceeds(body, MAX_DEPTH):
            raise _too_deep()
        if body is None:
            return super()._validate(body)
        error = next(self._validator.iter_errors(body), None)  # the one Connexion's validate() raises
        if error is None:
            return None
        raise BadRequestProblem(detail=f"{_message(error)}{format_error_with_path(exception=error)}")


def _message(error: ValidationError) -> str:
    """jsonschema's message, or the spec's words for a pattern (``x-pattern-message``) where it has some."""
    schema = cast("Mapping[str, Any]", error.schema)  # in draft 4 a schema is always an object
    if error.validator == "pattern" and PATTERN_MESSAGE in schema:
        return f"{error.instance!r} {schema[PATTERN_MESSAGE]}"
    return error.message


def _too_deep() -> BadRequestProblem:
    return BadRequestProblem(
        detail=f"request body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects"
    )


class MultiPartBodyValidator(MultiPartFormDataValidator):
    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> dict:
        try:
            return await super()._parse(stream, scope)
        except MultiPartException as exc:  # no boundary in the Content-Type, say: Connexion lets it through
            raise BadRequestProblem(detail=f"malformed multipart/form-data body: {exc}") from None


class NamedParameterValidator(ParameterValidator):
    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict, param_name: str | None = None
    ) -> str | None:
        error = ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        if error is None or value is None:  # none, or "Missing … parameter 'name'", which names it
            return error
        message = error.partition("\n\n")[0]  # jsonschema's message; the rest repeats schema and value
        return f"{message} - {parameter_type} parameter {param['name']!r}"


#: An integer as a path takes it (Connexion's ``int`` route convertor): ASCII digits, an optional minus.
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


def _integer_text(value: Any) -> bool:
    """Whether ``value`` may be read as an integer (True for what is not text: nothing to refuse)."""
    return not isinstance(value, str) or bool(_INTEGER.fullmatch(value))


class AsciiIntegers(OpenAPIURIParser):
    """Connexion's parser of query, path and form values, reading integers from ASCII digits only."""

    def resolve_params(self, params: dict[str, Any], _in: str) -> dict[str, Any]:
        resolved = super().resolve_params(params, _in)
        for name, raw in params.items():
            schema = self.param_schemas.get(name) or {}
            if schema.get("type") == "integer":
                value = raw if _in == "path" or not isinstance(raw, list) else raw[-1]
                if not _integer_text(value):
                    resolved[name] = value  # text: "'１０' is not of type 'integer' - query parameter …"
        return resolved

    def resolve_form(self, form_data: dict[str, Any]) -> dict[str, Any]:
        for name, raw in form_data.items():
            schema = self.form_defns.get(name) or {}
            value = raw[-1] if isinstance(raw, list) and raw else raw
            if schema.get("type") == "integer" and not _integer_text(value):
                # Connexion's own answer to a form value int() cannot read, which names the field.
                raise TypeValidationError("integer", "requestBody", name)
        return super().resolve_form(form_data)


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": NamedParameterValidator,
    "body": MediaTypeDict(
        {
            **VALIDATOR_MAP["body"],
            "*/*json": CompiledJSONBodyValidator,
            "multipart/form-data": MultiPartBodyValidator,
        }
    ),
}

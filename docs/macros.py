"""Build-time macros of the docs site (mkdocs.yml: ``plugins: macros: module_name: docs/macros``).

``api_reference()`` renders ``openapi/spec.yaml`` as Markdown when the site is built, so the API
reference page is the spec itself, read from disk: no network, no JavaScript, nothing to keep in step
by hand. ``configuration_reference()`` does the same for the settings' one declaration
(``config/settings.py``). Only pages that ask for it (``render_macros: true`` in their front matter) are rendered as
templates, so the transcripts' braces elsewhere stay as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "spec.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or the component its ``$ref`` names (local references only, as in the spec)."""
    while "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def _cell(text: object) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    """A schema in a few words: its component's name (a link to it), or its type and bounds."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[`{name}`](#{name.lower()})"  # its section below
    words = [schema.get("type", "")]
    if "items" in schema:
        words.append("of " + _schema(spec, schema["items"]))
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            words.append(f"{combined} " + ", ".join(_schema(spec, part) for part in schema[combined]))
    if "enum" in schema:
        words.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    for key in ("minimum", "maximum", "minLength", "maxLength", "pattern", "default"):
        if key in schema:
            words.append(f"{key} `{schema[key]}`")
    return _cell(" ".join(word for word in words if word))


def _operation(spec: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", f"**{operation.get('summary', '')}** "]
    lines[-1] += f"(`{operation['operationId']}`)"
    if operation.get("security") or ("security" not in operation and spec.get("security")):
        schemes = sorted(
            {name for entry in operation.get("security", spec.get("security", [])) for name in entry}
        )
        if schemes:
            lines[-1] += " · security: " + ", ".join(f"`{name}`" for name in schemes)
    lines.append("")
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    parameters = [_resolve(spec, parameter) for parameter in operation.get("parameters", [])]
    if parameters:
        lines += ["| parameter | in | required | schema | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {'yes' if parameter.get('required') else 'no'} "
                f"| {_schema(spec, parameter.get('schema', {}))} | {_cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    if "requestBody" in operation:
        body = _resolve(spec, operation["requestBody"])
        media = ", ".join(
            f"`{name}` ({_schema(spec, content.get('schema', {}))})"
            for name, content in body["content"].items()
        )
        lines += [f"Request body{' (required)' if body.get('required') else ''}: {media}", ""]
    lines += ["| status | description | body |", "| --- | --- | --- |"]
    for status, response in operation["responses"].items():
        response = _resolve(spec, response)
        content = ", ".join(
            f"`{name}` {_schema(spec, media.get('schema', {}))}"
            for name, media in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {content} |")
    return [*lines, ""]


def api_reference() -> str:
    """Every operation of the spec, grouped by its first tag in the spec's tag order."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in spec.get("tags", [])}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["Other"])[0]
                by_tag.setdefault(tag, []).extend(_operation(spec, path, method, operation))
    descriptions = {tag["name"]: tag.get("description", "") for tag in spec.get("tags", [])}
    lines = [f"Generated from `openapi/spec.yaml`, {spec['info']['title']} {spec['info']['version']}.", ""]
    for tag, operations in by_tag.items():
        if operations:
            lines += [f"## {tag}", "", _cell(descriptions.get(tag, "")), "", *operations]
    schemes = spec["components"].get("securitySchemes", {})
    if schemes:
        lines += ["## Security schemes", "", "| name | type | description |", "| --- | --- | --- |"]
        for name, scheme in schemes.items():
            kind = " ".join(str(scheme.get(key, "")) for key in ("type", "scheme", "in", "name")).strip()
            lines.append(f"| `{name}` | {_cell(kind)} | {_cell(scheme.get('description', ''))} |")
        lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += [f"### `{name}`", ""]
        if schema.get("description"):
            lines += [schema["description"].strip(), ""]
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            lines += ["| property | required | schema | description |", "| --- | --- | --- | --- |"]
            for prop, sub in properties.items():
                lines.append(
                    f"| `{prop}` | {'yes' if prop in required else 'no'} | {_schema(spec, sub)} "
                    f"| {_cell(sub.get('description', ''))} |"
                )
            lines.append("")
    return "\n".join(lines)


def _default(value: object) -> str:
    """A declared default as the reference shows it, when the declaration gives no words for it."""
    if value is None or value in ((), frozenset()):
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _variables(cls: type) -> list[str]:
    from config.variables import variables

    lines = ["| variable | meaning | accepts | default |", "| --- | --- | --- | --- |"]
    for field, var in variables(cls):
        shown = var.shown or _default(field.default)
        lines.append(f"| `{var.name}` | {_cell(var.doc)} | {_cell(var.parser.accepts)} | {_cell(shown)} |")
    return [*lines, ""]


def configuration_reference() -> str:
    """Every variable the service and its server process read, from their one declaration."""
    from config.settings import ServerSettings, Settings

    return "\n".join(
        [
            "Generated from the declarations in `config/settings.py`.",
            "",
            "### The service (server, worker and CLI)",
            "",
            *_variables(Settings),
            "### The server process (`config/gunicorn.py`)",
            "",
            *_variables(ServerSettings),
        ]
    )


def define_env(env: Any) -> None:
    """The hook mkdocs-macros and Zensical's macros extension call: register the macros."""
    env.macro(api_reference)
    env.macro(configuration_reference)

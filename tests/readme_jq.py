"""The few jq filters the transcripts of the README and docs/ use, as jq 1.6 prints them: `jq` for tests/test_readme.py.

The transcripts trim responses with jq; the test puts this script on PATH as `jq`, so `make test` needs
no jq and no jq version decides what a transcript shows. It knows paths (`.a.b`, `.a[]`), pipes,
commas, parentheses, object (`{a, b: .c}`) and array (`[…]`) construction, and `-c`; anything
else exits 2 naming what it does not know, so an author who needs more sees it at once.
Numbers print as jq 1.6 prints them (`3.0` as `3`), the output of Debian 12's jq.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

Filter = Callable[[Any], Iterator[Any]]
_TOKEN = re.compile(r"\s*(?:(\.\.)|([A-Za-z_][A-Za-z0-9_]*)|(\S))")


class Unsupported(Exception):
    """A filter this script does not implement."""


def _tokens(program: str) -> list[str]:
    tokens, position = [], 0
    while position < len(program.rstrip()):
        match = _TOKEN.match(program, position)
        if match is None:
            raise Unsupported(program[position:])
        token = next(group for group in match.groups() if group is not None)
        if token == "..":
            raise Unsupported("..")
        tokens.append(token)
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, program: str) -> None:
        self.tokens = _tokens(program)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise Unsupported(f"expected {expected or 'more'} at token {self.at}: {' '.join(self.tokens)}")
        self.at += 1
        return token

    def parse(self) -> Filter:
        parsed = self.pipe()
        if self.peek() is not None:
            raise Unsupported(f"{self.peek()!r} in {' '.join(self.tokens)}")
        return parsed

    def pipe(self) -> Filter:
        left = self.comma()
        if self.peek() != "|":
            return left
        self.take("|")
        right = self.pipe()
        return lambda value: (out for mid in left(value) for out in right(mid))

    def comma(self) -> Filter:
        parts = [self.postfix()]
        while self.peek() == ",":
            self.take(",")
            parts.append(self.postfix())
        if len(parts) == 1:
            return parts[0]
        return lambda value: (out for part in parts for out in part(value))

    def postfix(self) -> Filter:
        result = self.primary()
        while self.peek() in (".", "["):
            if self.take() == ".":
                result = _then(result, _field(self.take()))
            else:
                self.take("]")
                result = _then(result, _iterate)
        return result

    def primary(self) -> Filter:
        token = self.take()
        if token == ".":
            following = self.peek()
            if following is not None and (following[0].isalpha() or following[0] == "_"):
                return _field(self.take())
            if following == "[":
                self.take("[")
                self.take("]")
                return _iterate
            return lambda value: iter([value])
        if token == "(":
            inner = self.pipe()
            self.take(")")
            return inner
        if token == "[":
            inner = self.pipe()
            self.take("]")
            return lambda value: iter([list(inner(value))])
        if token == "{":
            return self.object()
        raise Unsupported(token)

    def object(self) -> Filter:
        entries: list[tuple[str, Filter]] = []
        while True:
            key = self.take()
            if not key[0].isalpha() and key[0] != "_":
                raise Unsupported(f"object key {key!r}")
            if self.peek() == ":":
                self.take(":")
                entries.append((key, self.postfix()))
            else:
                entries.append((key, _field(key)))
            if self.take() == "}":
                break

        def build(value: Any) -> Iterator[Any]:
            choices = [list(entry(value)) for _, entry in entries]
            for combination in itertools.product(*choices):
                yield dict(zip((key for key, _ in entries), combination, strict=True))

        return build


def _then(first: Filter, second: Filter) -> Filter:
    return lambda value: (out for mid in first(value) for out in second(mid))


def _field(name: str) -> Filter:
    def get(value: Any) -> Iterator[Any]:
        if value is None:
            yield None
        elif isinstance(value, dict):
            yield value.get(name)
        else:
            raise Unsupported(f"cannot index {type(value).__name__} with {name!r}")

    return get


def _iterate(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        yield from value
    elif isinstance(value, dict):
        yield from value.values()
    else:
        raise Unsupported(f"cannot iterate over {type(value).__name__}")


def _jq16_numbers(value: Any) -> Any:
    """jq 1.6 holds every number as a double and prints an integral one without its fraction."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e17:
        return int(value)
    if isinstance(value, list):
        return [_jq16_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _jq16_numbers(item) for key, item in value.items()}
    return value


def dumps(value: Any, compact: bool) -> str:
    value = _jq16_numbers(value)
    if compact:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value, ensure_ascii=False, indent=2)


def main(argv: list[str]) -> int:
    compact = "-c" in argv
    rest = [arg for arg in argv if arg != "-c"]
    if len(rest) != 1 or rest[0].startswith("-"):
        print(
            f"jq (tests/readme_jq.py): only `jq [-c] FILTER` is known, not: {' '.join(argv)}", file=sys.stderr
        )
        return 2
    try:
        program = _Parser(rest[0]).parse()
        text, decoder, position = sys.stdin.read(), json.JSONDecoder(), 0
        while text[position:].strip():
            position += len(text[position:]) - len(text[position:].lstrip())
            document, position = decoder.raw_decode(text, position)
            for out in program(document):
                print(dumps(out, compact))
    except Unsupported as exc:
        print(f"jq (tests/readme_jq.py) does not know: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"jq (tests/readme_jq.py): not JSON: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

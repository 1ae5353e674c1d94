"""How an environment variable is declared and read: :func:`env` makes a settings field that names its
variable, its parser and its meaning; :func:`read` builds a settings object from those declarations.

Each parser takes ``(name, text, default)`` for a variable that is set (possibly to nothing) and
returns its value, or raises ValueError with a message that names the variable and says what it takes
(keys and database URLs are never echoed: they are secrets). ``Parser.accepts`` says the same in words
for the configuration reference. The declarations themselves are in :mod:`config.settings`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from coe_template.ledger.modes import ACCEPTS as LOG_MODES
from coe_template.ledger.modes import LogMode, parse_mode

T = TypeVar("T")


@dataclass(frozen=True)
class Parser:
    """How a variable's text (present, possibly empty) becomes its value: ``read(name, text, default)``
    returns the value or raises ValueError naming the variable; ``accepts`` says what it takes, in words."""

    read: Callable[[str, str, Any], Any]
    accepts: str


@dataclass(frozen=True)
class Var:
    """One environment variable: its name, parser, meaning and (when its value alone would not say
    it) its default in words."""

    name: str
    parser: Parser
    doc: str
    shown: str | None = None


def env(name: str, default: T, parser: Parser, doc: str, shown: str | None = None) -> T:
    """A settings field read from the variable ``name``: the one declaration of that variable."""
    return field(default=default, metadata={"var": Var(name, parser, doc, shown)})


def variables(cls: type) -> Iterator[tuple[Field[Any], Var]]:
    """The declared variables of a settings class, in declaration order, with their fields."""
    for each in fields(cls):
        if "var" in each.metadata:
            yield each, each.metadata["var"]


def read(cls: type[T], environ: Mapping[str, str]) -> T:
    """An instance of ``cls`` from ``environ``: each declared variable that is set, parsed; the rest default."""
    values = {
        each.name: var.parser.read(var.name, environ[var.name], each.default)
        for each, var in variables(cls)
        if var.name in environ
    }
    return cls(**values)


# --- parsers: each takes (name, text, default) and names the variable in its error ----------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(name: str, value: str, default: bool) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE | _FALSE - {''})}, not {value!r}")


def _number(kind: type) -> Callable[[str, str, Any], Any]:
    def number(name: str, value: str, default: Any) -> Any:
        try:
            parsed = kind(value)
        except ValueError:
            raise ValueError(
                f"{name} must be a {'whole ' if kind is int else ''}number, not {value!r}"
            ) from None
        if not math.isfinite(parsed) or parsed <= 0:
            raise ValueError(f"{name} must be a positive, finite number, not {value!r}")
        return parsed

    return number


def _seconds(name: str, value: str, default: int) -> int:
    """A whole number of seconds, 0 included."""
    if not (value.strip().isascii() and value.strip().isdigit()):
        raise ValueError(f"{name} must be a whole number of seconds (0 or more), not {value!r}")
    return int(value)


def choice(choices: tuple[str, ...], normalise: Callable[[str], str] = str.lower) -> Parser:
    def choose(name: str, value: str, default: str) -> str:
        if not value.strip():
            return default
        if normalise(value.strip()) not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, not {value!r}")
        return normalise(value.strip())

    return Parser(choose, "one of " + ", ".join(f"`{each}`" for each in choices))


def _keys(name: str, value: str, default: frozenset[str]) -> frozenset[str]:
    keys = frozenset(k.strip() for k in value.split(",") if k.strip())
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ValueError(f"{name}: every key must be at least 16 characters long")
    return keys


def _database_url(name: str, value: str, default: str | None) -> str | None:
    """A SQLAlchemy URL, or the default (empty); never echoed (it may hold a password)."""
    if not value:
        return default
    try:
        make_url(value)
    except ArgumentError:
        raise ValueError(f"{name} is not a database URL (e.g. postgresql+psycopg://user@host/db)") from None
    return value


#: A plain decimal number: ASCII digits and one optional point (no sign, exponent or underscore).
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)


def _retention(name: str, value: str, default: float | None) -> float | None:
    """Days to keep something: a positive number (fractions allowed), or ``never`` (None)."""
    value = value.strip()
    if not value:
        return default
    if value.lower() == "never":
        return None
    days = float(value) if _DECIMAL.fullmatch(value) else math.nan
    if not (math.isfinite(days) and days > 0):
        raise ValueError(f"{name} must be a positive number of days, or 'never', not {value!r}")
    return days


#: A DNS host name: dot-separated labels of letters, digits and inner hyphens (an optional final dot).
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+", re.ASCII)
#: A path prefix: RFC 3986 segment characters only (no query, no fragment).
_PATH_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*", re.ASCII)


def valid_host(host: str) -> bool:
    """Whether ``host`` is a host name, an IPv4 literal or a bracketed IPv6 literal, with an optional
    port 1-65535: what a ``Host`` header or a public URL may name, and nothing else."""
    name, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
    if not colon or name.endswith(":"):  # no port (an unbracketed IPv6 address is not a host either)
        name, port = host, ""
    elif not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return False
    if name.startswith("[") and name.endswith("]"):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.fullmatch(name))


def _public_url(name: str, value: str, default: str | None) -> str | None:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or the default (empty)."""
    value = value.strip()
    if not value:
        return default
    scheme, sep, rest = value.partition("://")
    authority, slash, path = rest.partition("/")
    if scheme not in ("http", "https") or not sep or not valid_host(authority):
        valid = False
    else:
        valid = bool(_PATH_PREFIX.fullmatch(slash + path))
    if not valid:
        raise ValueError(
            f"{name} must be a base URL like https://api.example.com[:port][/prefix] "
            f"(http or https; no credentials, query or fragment), not {value!r}"
        )
    return value.rstrip("/")


def _port(name: str, value: str, default: int) -> int:
    """A TCP port, or 0 for none (the default when empty)."""
    value = value.strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise ValueError(f"{name} must be a port number (1-65535), or 0 for none, not {value!r}")
    return int(value)


#: An origin as browsers send it: scheme, host and optional port; nothing after.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|\*")


def _origins(name: str, value: str, default: tuple[str, ...]) -> tuple[str, ...]:
    origins = tuple(dict.fromkeys(o.strip().rstrip("/") for o in value.split(",") if o.strip()))
    wrong = [o for o in origins if not _ORIGIN.fullmatch(o)]
    if wrong:
        raise ValueError(f"{name}: {wrong[0]!r} is not an origin like https://app.example.com[:port] (or *)")
    return origins


def _prediction_log(name: str, value: str, default: LogMode) -> LogMode:
    """What the prediction ledger keeps (:mod:`coe_template.ledger.modes`); empty: the default."""
    if not value.strip():
        return default
    try:
        return parse_mode(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


FLAG = Parser(_flag, "`true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`; empty is false)")
WHOLE = Parser(_number(int), "a positive whole number")
NUMBER = Parser(_number(float), "a positive number")
SECONDS = Parser(_seconds, "a whole number of seconds, 0 or more")
PATH = Parser(lambda name, value, default: Path(value) if value else default, "a path (empty: the default)")
TEXT = Parser(lambda name, value, default: value or default, "text (empty: the default)")
STRIPPED = Parser(lambda name, value, default: value.strip() or default, "text (empty: the default)")
KEYS = Parser(_keys, "comma-separated keys, each at least 16 characters")
DATABASE = Parser(_database_url, "a SQLAlchemy URL (empty: the default)")
RETENTION = Parser(_retention, "a positive number of days (fractions allowed), or `never`")
PUBLIC_URL = Parser(_public_url, "`http(s)://host[:port][/prefix]` (empty: none)")
PORT = Parser(_port, "a port (1-65535), or `0` for none")
ORIGINS = Parser(_origins, "comma-separated `http(s)://host[:port]`, or `*`")
PREDICTION_LOG = Parser(_prediction_log, LOG_MODES)

"""What every ``coe-template`` command shares: its context (settings, the registry opened on demand),
the refusals turned into one-line errors, and how it prints."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import ParamSpec, TypeVar

import click

from coe_template.artifacts.runs import Artifacts
from coe_template.bootstrap import open_registry
from coe_template.errors import CoeError, DatabaseUnavailable
from coe_template.registry import PRODUCTION, AliasNotFound, ModelNotFound, Registry
from config.settings import Settings


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def echo_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Rows under a header, each column as wide as its widest cell, two spaces apart: what every
    listing command prints by default (``--json`` prints the records instead)."""
    cells = [list(header)] + [
        ["-" if cell is None or cell == "" else str(cell) for cell in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


#: ``--json``: the records as JSON instead of a table (every listing command takes it).
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def iso_time(moment: datetime | None) -> str | None:
    """A moment as the CLI prints it: ISO 8601 to the millisecond (the registry's are in UTC)."""
    return None if moment is None else moment.isoformat(timespec="milliseconds")


class Context:
    """Settings for every command; the registry opened only when a command needs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = open_registry(self.settings)
        return self._registry

    def close(self) -> None:
        """Close the registry's connections, if a command opened it."""
        if self._registry is not None:
            self._registry.engine.dispose()
            self._registry = None

    def load(self, name: str, version: int | None) -> Artifacts:
        try:
            number = version if version is not None else self.registry.get_alias(name, PRODUCTION)
        except (ModelNotFound, AliasNotFound) as exc:
            raise click.ClickException(f"{exc}: run `coe-template train` first") from None
        return self.registry.load(name, number)


P = ParamSpec("P")
R = TypeVar("R")


def fail_clearly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the package's refusals into a one-line error and exit status 1."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DatabaseUnavailable as exc:  # the operator at a terminal is told the driver's reason too
            raise click.ClickException(f"{exc}{driver_reason(exc)}") from None
        except CoeError as exc:
            raise click.ClickException(str(exc)) from None

    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    return wrapper


def driver_reason(exc: BaseException) -> str:
    """The driver's first line behind a database failure (never the URL: drivers do not print passwords)."""
    cause = exc.__cause__
    driver = getattr(cause, "orig", None) or cause
    first = str(driver).strip().splitlines()[0] if driver is not None and str(driver).strip() else ""
    return f" ({first}; check DATABASE_URL if it persists)" if first else ""


pass_context = click.make_pass_decorator(Context)
model_option = click.option("--model", "name", default=None, help="Model name [default: $COE_MODEL_NAME].")

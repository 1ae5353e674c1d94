"""Batch input: items ``{"id", "text"}`` (or ``title`` + ``description``), checked before any work."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from coe_template.data import project_text

#: Problems listed in one error message before "and N more".
_SHOWN = 5
#: Ids travel in URLs (``/results/{item-id}``): letters, digits and ``._~:@-`` only.
ITEM_ID = re.compile(r"[A-Za-z0-9._~:@-]{1,200}")


class BatchInputError(ValueError):
    """The input cannot become a batch job; the message names each problem."""


@dataclass(frozen=True)
class Item:
    id: str
    text: str


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise BatchInputError(f"{what}: {'; '.join(problems[:_SHOWN])}{more}")


def _checked(pairs: Iterable[tuple[str, str]], where: str) -> list[Item]:
    """Items in input order; empty texts, missing or duplicate ids are refused by position."""
    items: list[Item] = []
    problems: list[str] = []
    valid_id = ITEM_ID.fullmatch
    for position, (item_id, text) in enumerate(pairs):
        if not valid_id(item_id):
            if not item_id:
                problems.append(f"{where}[{position}] has no id")
            else:
                problems.append(f"{where}[{position}] id {item_id[:40]!r} must be 1-200 letters, digits or ._~:@-")
        if not text or text.isspace():
            problems.append(f"{where}[{position}] (id {item_id!r}) has no text")
        elif "\x00" in text:
            problems.append(f"{where}[{position}] (id {item_id!r}) contains a NUL character")
        items.append(Item(item_id, text))
    if not items:
        raise BatchInputError(f"no {where}: a batch needs at least one")
    if len({item.id for item in items}) < len(items):
        duplicates = [i for i, n in Counter(item.id for item in items).items() if n > 1 and i]
        problems += [f"id {i!r} appears more than once" for i in duplicates]
    _raise_if(problems, "invalid batch")
    return items


def to_items(rows: Iterable[Mapping[str, object]], where: str = "items") -> list[Item]:
    """Items from JSON objects with ``id`` and ``text``, or ``id``, ``title`` and ``description``."""
    def pairs() -> Iterator[tuple[str, str]]:
        for row in rows:
            text = row.get("text")
            if text is None:
                text = project_text(str(row.get("title") or ""), str(row.get("description") or ""))
            yield str(row.get("id") or "").strip(), str(text)

    return _checked(pairs(), where)


def csv_rows(text: str) -> Iterator[list[str]]:
    """The rows ``csv.reader`` gives, several times faster when nothing in the text is quoted.

    Without a quote, a carriage return or a NUL, the default dialect's rows are the lines
    split at commas (a blank line is an empty row, the final newline ends the last row),
    and no field can exceed the field size limit if no line does.
    """
    if '"' in text or "\r" in text or "\x00" in text:
        return csv.reader(io.StringIO(text, newline=""))
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if lines and max(map(len, lines)) > csv.field_size_limit():
        return csv.reader(io.StringIO(text, newline=""))  # let it say which field is too large
    return (line.split(",") if line else [] for line in lines)


def read_csv(data: bytes) -> list[Item]:
    """Items from a CSV with an ``id`` column and ``text`` or ``title`` + ``description``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"the CSV file is not UTF-8 text: {exc}") from None
    reader = csv_rows(text)
    columns = next(reader, [])
    if not columns:
        raise BatchInputError("the CSV file is empty: expected a header with id and text (or title, description)")
    if "id" not in columns or not ("text" in columns or {"title", "description"} <= set(columns)):
        raise BatchInputError(
            f"the CSV file needs an id column and a text column (or title and description); "
            f"found {', '.join(columns)}"
        )
    at = {name: columns.index(name) for name in ("id", "text", "title", "description") if name in columns}

    def pairs() -> Iterator[tuple[str, str]]:
        # A short row misses its last fields, as csv.DictReader would fill them with None.
        for row in reader:
            row += [""] * (len(columns) - len(row))
            if "text" in at:
                yield row[at["id"]].strip(), row[at["text"]]
            else:
                yield row[at["id"]].strip(), project_text(row[at["title"]], row[at["description"]])

    try:
        return _checked(pairs(), where="row")
    except csv.Error as exc:
        raise BatchInputError(f"the CSV file is malformed: {exc}") from None

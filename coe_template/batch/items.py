"""Batch input: items ``{"id", "text"}`` (or ``title`` + ``description``), checked before any work."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
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


def _text_of(row: Mapping[str, object]) -> str:
    text = row.get("text")
    if text is None:
        text = project_text(str(row.get("title") or ""), str(row.get("description") or ""))
    return str(text)


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise BatchInputError(f"{what}: {'; '.join(problems[:_SHOWN])}{more}")


def to_items(rows: Iterable[Mapping[str, object]], where: str = "items") -> list[Item]:
    """Items in input order; empty texts, missing or duplicate ids are refused by position."""
    items: list[Item] = []
    problems: list[str] = []
    for position, row in enumerate(rows):
        item_id = str(row.get("id") or "").strip()
        text = _text_of(row)
        if not item_id:
            problems.append(f"{where}[{position}] has no id")
        elif not ITEM_ID.fullmatch(item_id):
            problems.append(f"{where}[{position}] id {item_id[:40]!r} must be 1-200 letters, digits or ._~:@-")
        if not text.strip():
            problems.append(f"{where}[{position}] (id {item_id!r}) has no text")
        elif "\x00" in text:
            problems.append(f"{where}[{position}] (id {item_id!r}) contains a NUL character")
        items.append(Item(item_id, text))
    if not items:
        raise BatchInputError(f"no {where}: a batch needs at least one")
    duplicates = [i for i, n in Counter(item.id for item in items).items() if n > 1 and i]
    problems += [f"id {i!r} appears more than once" for i in duplicates]
    _raise_if(problems, "invalid batch")
    return items


def read_csv(data: bytes) -> list[Item]:
    """Items from a CSV upload with an ``id`` column and ``text`` or ``title`` + ``description``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"the CSV file is not UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    if not columns:
        raise BatchInputError("the CSV file is empty: expected a header with id and text (or title, description)")
    if "id" not in columns or not ({"text"} <= set(columns) or {"title", "description"} <= set(columns)):
        raise BatchInputError(
            f"the CSV file needs an id column and a text column (or title and description); "
            f"found {', '.join(columns)}"
        )
    try:
        return to_items(reader, where="row")
    except csv.Error as exc:
        raise BatchInputError(f"the CSV file is malformed: {exc}") from None

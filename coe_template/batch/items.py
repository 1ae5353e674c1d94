"""Batch input: items ``{"id", "text"}`` (or ``title`` + ``description``), checked before any work."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter

from coe_template.data import project_text
from coe_template.errors import InvalidInput

#: Problems listed in one error message before "and N more".
_SHOWN = 5
#: Ids travel in URLs (``/results/{item-id}``): letters, digits and these only ("-" last: a regex class).
_ID_PUNCTUATION = "._~:@-"
MAX_ID_LENGTH = 200
#: The spec's item-id ``pattern`` is ``^`` this ``$`` (a test holds them equal).
ITEM_ID = re.compile(f"[A-Za-z0-9{_ID_PUNCTUATION}]{{1,{MAX_ID_LENGTH}}}")
#: Many ids, each followed by a newline (which no id may hold).
_ITEM_IDS = re.compile(f"(?:{ITEM_ID.pattern}\n)*")


#: How a CSV field must be quoted: said with every quoting error.
QUOTING = (
    "enclose a field holding a comma, a quote or a line break in quotes, and double each quote inside it"
)


class BatchInputError(InvalidInput):
    """The input cannot become a batch job; the message names each problem."""


#: An item: its id and its text. Plain tuples: a 100k-item batch makes 100k of them, and
#: the garbage collector stops tracking a tuple of strings, unlike any class instance.
Item = tuple[str, str]


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise BatchInputError(f"{what}: {'; '.join(problems[:_SHOWN])}{more}")


#: The refusal of a :func:`blank` text, after where it is (``items[2] (id 'a')``, ``texts[0]``): one wording.
NO_TEXT = "has no text"


def blank(text: str) -> bool:
    """Whether a text has no character but whitespace (``str.isspace``): the spec's ``pattern: "\\S"``, negated."""
    return not text or text.isspace()


def _all_valid(ids: list[str], texts: list[str]) -> bool:
    """Whether :func:`_problems` would find nothing, in a few passes over whole columns.

    The joined ids could match the pattern if an id held a newline, but then there
    would be more newlines than ids.
    """
    joined = "\n".join(ids) + "\n" if ids else ""
    return (
        bool(_ITEM_IDS.fullmatch(joined))
        and joined.count("\n") == len(ids)
        and len(set(ids)) == len(ids)
        and "" not in texts
        and not any(map(str.isspace, texts))
        and "\x00" not in "".join(texts)
    )  # blank() as above, a column at a time


def _problems(ids: list[str], texts: list[str], where: str) -> list[str]:
    """Every problem of the input, by position (and id) in input order, then the duplicate ids."""
    problems: list[str] = []
    for position, (item_id, text) in enumerate(zip(ids, texts, strict=True)):
        if not ITEM_ID.fullmatch(item_id):
            if not item_id:
                problems.append(f"{where}[{position}] has no id")
            else:
                problems.append(
                    f"{where}[{position}] id {item_id[:40]!r} must be 1-{MAX_ID_LENGTH} letters, "
                    f"digits or {_ID_PUNCTUATION}"
                )
        if blank(text):
            problems.append(f"{where}[{position}] (id {item_id!r}) {NO_TEXT}")
        elif "\x00" in text:
            problems.append(f"{where}[{position}] (id {item_id!r}) contains a NUL character")
    return problems + [f"id {i!r} appears more than once" for i, n in Counter(ids).items() if n > 1 and i]


def _checked(ids: list[str], texts: list[str], where: str) -> list[Item]:
    """Items in input order; empty texts, missing or duplicate ids are refused by position.

    Valid input, the usual case, is checked a column at a time; only input that fails
    is walked item by item, to name each problem.
    """
    if not ids:
        raise BatchInputError(f"no {where}: a batch needs at least one")
    if not _all_valid(ids, texts):
        _raise_if(_problems(ids, texts, where), "invalid batch")
    return list(zip(ids, texts, strict=True))


def to_items(rows: Iterable[Mapping[str, object]], where: str = "items") -> list[Item]:
    """Items from JSON objects with ``id`` and ``text``, or ``id``, ``title`` and ``description``."""
    ids: list[str] = []
    texts: list[str] = []
    for row in rows:
        text = row.get("text")
        if text is None:
            text = project_text(str(row.get("title") or ""), str(row.get("description") or ""))
        ids.append(str(row.get("id") or "").strip())
        texts.append(str(text))
    return _checked(ids, texts, where)


def csv_rows(text: str) -> Iterator[list[str]]:
    """The rows a strict ``csv.reader`` gives, several times faster when nothing in the text is quoted.

    Strict: a quote left open, or text after a closing quote, is an error rather than a field
    that runs on to the next quote, swallowing the rows in between. Without a quote, a
    carriage return or a NUL, the default dialect's rows are the lines split at commas (a
    blank line is an empty row, the final newline ends the last row), and no field can exceed
    the field size limit if no line does.
    """
    if '"' in text or "\r" in text or "\x00" in text:
        return csv.reader(io.StringIO(text, newline=""), strict=True)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if lines and max(map(len, lines)) > csv.field_size_limit():
        return csv.reader(io.StringIO(text, newline=""), strict=True)  # let it say which field is too large
    return (line.split(",") if line else [] for line in lines)


def _malformed(text: str) -> BatchInputError:
    """The first malformed row of a CSV text, by the line it starts on.

    Called only once reading failed, or the text holds an odd number of quotes: quotes that
    open and close fields, and the doubled ones inside them, come in pairs, so one is left
    over in an unquoted field (which the csv module would keep as text).
    """
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, strict=True)
    start = 1
    try:
        for _ in reader:
            if sum(line.count('"') for line in lines[start - 1 : reader.line_num]) % 2:
                return _malformed_row(start, "an unmatched quote", hint=True)
            start = reader.line_num + 1
    except csv.Error as exc:  # a quote left open can also end as a field over the size limit
        return _malformed_row(start, str(exc), hint='"' in text)
    raise AssertionError("_malformed called on a well-formed CSV text")


def _malformed_row(line: int, what: str, hint: bool) -> BatchInputError:
    return BatchInputError(
        f"the CSV file is malformed in the row starting on line {line}: {what}"
        + (f"; {QUOTING}" if hint else "")
    )


def read_csv(data: bytes) -> list[Item]:
    """Items from a CSV with an ``id`` column and ``text`` or ``title`` + ``description``.

    A malformed CSV is refused whole, naming the row, never read in part.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"the CSV file is not UTF-8 text: {exc}") from None
    try:
        rows = list(csv_rows(text))
    except csv.Error:
        raise _malformed(text) from None
    if text.count('"') % 2:
        raise _malformed(text)
    columns = rows.pop(0) if rows else []
    if not columns:
        raise BatchInputError(
            "the CSV file is empty: expected a header with id and text (or title, description)"
        )
    if "id" not in columns or not ("text" in columns or {"title", "description"} <= set(columns)):
        raise BatchInputError(
            f"the CSV file needs an id column and a text column (or title and description); "
            f"found {', '.join(columns)}"
        )
    if rows and min(map(len, rows)) < len(columns):
        # A short row misses its last fields, as csv.DictReader would fill them with None.
        rows = [row + [""] * (len(columns) - len(row)) for row in rows]

    def column(name: str) -> list[str]:
        return list(map(itemgetter(columns.index(name)), rows))

    if "text" in columns:
        texts = column("text")
    else:
        texts = list(map(project_text, column("title"), column("description")))
    return _checked(list(map(str.strip, column("id"))), texts, where="row")

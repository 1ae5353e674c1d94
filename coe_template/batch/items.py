"""Batch input: items ``{"id", "text"}`` (or ``title`` + ``description``), checked before any work."""

from __future__ import annotations

import codecs
import csv
import io
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO

import numpy as np

from coe_template.errors import InvalidInput
from coe_template.model.data import project_text

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
    return _positional(ids, texts, where) + _duplicates(ids)


def _duplicates(ids: Iterable[str]) -> list[str]:
    return [f"id {i!r} appears more than once" for i, n in Counter(ids).items() if n > 1 and i]


def _positional(ids: list[str], texts: list[str], where: str, first: int = 0) -> list[str]:
    """The problems of each item on its own, by position (counted from ``first``) and id."""
    problems: list[str] = []
    for position, (item_id, text) in enumerate(zip(ids, texts, strict=True), first):
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
    return problems


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


def _malformed_row(line: int, what: str, hint: bool) -> BatchInputError:
    return BatchInputError(
        f"the CSV file is malformed in the row starting on line {line}: {what}"
        + (f"; {QUOTING}" if hint else "")
    )


#: Bytes of an upload decoded and split into rows at a time: what bounds the objects a CSV builds at once.
BLOCK_BYTES = 1 << 16
#: The longest row, in characters (a text field is at most ``csv.field_size_limit()``, 131,072).
MAX_ROW_CHARS = 1 << 20
#: A row, with the line it starts on (1 is the header's).
Row = tuple[int, list[str]]


def _not_utf8(exc: UnicodeDecodeError, offset: int) -> BatchInputError:
    """The decoder's own words, with the position in the whole file rather than in one block."""
    start, end = offset + exc.start, offset + exc.end
    where = (
        f"byte 0x{exc.object[exc.start]:02x} in position {start}"
        if end - start == 1
        else f"bytes in position {start}-{end - 1}"
    )
    return BatchInputError(
        f"the CSV file is not UTF-8 text: {exc.encoding!r} codec can't decode {where}: {exc.reason}"
    )


def _decoded(stream: IO[bytes], block: int) -> Iterator[tuple[str, bool]]:
    """The stream's text a block at a time, and whether it is the last."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0  # bytes given to the decoder before this block
    while True:
        data = stream.read(block)
        held = len(decoder.getstate()[0])  # an incomplete character left from the block before
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, offset - held) from None
        offset += len(data)
        yield text, not data
        if not data:
            return


def _cut(text: str) -> int:
    """Where the complete lines of a block end: after its last line break (a ``\r`` that may be the
    first half of a ``\r\n`` split between blocks is kept for the next one)."""
    newline = text.rfind("\n")
    if newline >= 0:
        return newline + 1
    ret = text.rfind("\r", 0, len(text) - 1)
    return ret + 1 if ret >= 0 else 0


def _rows(stream: IO[bytes], block: int = BLOCK_BYTES) -> Iterator[Row]:
    """Rows of a strict ``csv.reader``, a block of lines at a time, each with the line it starts on.

    Strict as :func:`csv_rows`, and more: a row holding an odd number of quotes has one
    in an unquoted field that the csv module would keep as text, and is refused too.
    Lines without a quote, a carriage return or a NUL are split at commas (the fast path).
    """
    line = 1  # the line the next row starts on
    pending = ""  # lines not yet read as rows: the end of a block, or a quoted field still open
    for text, final in _decoded(stream, block):
        text = pending + text
        cut = len(text) if final else _cut(text)
        if len(text) - cut > MAX_ROW_CHARS:
            raise _malformed_row(line, f"a line longer than {MAX_ROW_CHARS} characters", hint=False)
        lines, pending = text[:cut], text[cut:]
        if not lines:
            continue
        if '"' in lines or "\r" in lines or "\x00" in lines:
            read, rows = _slow_rows(lines, line, final)
            pending = lines[read:] + pending
            if len(pending) > MAX_ROW_CHARS:
                raise _malformed_row(line, f"a row longer than {MAX_ROW_CHARS} characters", hint=True)
        else:
            split = lines.split("\n")
            if split[-1] == "":
                split.pop()
            if max(map(len, split)) > csv.field_size_limit():
                read, rows = _slow_rows(lines, line, final)  # let the csv module say which field is too large
            else:
                rows = [(n, row.split(",") if row else []) for n, row in enumerate(split, line)]
        if rows:
            yield from rows
            line = rows[-1][0] + _line_count(rows[-1])
        if final:
            return
        del rows


def _line_count(row: Row) -> int:
    """Lines a row spans: set by :func:`_slow_rows` for multi-line rows (see there), else one."""
    return getattr(row[1], "lines", 1)


class _Fields(list[str]):
    """A row that spans several lines, knowing how many."""

    lines = 1


def _slow_rows(text: str, line: int, final: bool) -> tuple[int, list[Row]]:
    """The rows of complete lines, by the csv module; and how many characters they took.

    A quoted field still open at the end of a block that is not the last may close in the
    next: the rows from its start are left for then.
    """
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, strict=True)
    rows: list[Row] = []
    start = 0  # index of the line the next row starts on
    used = 0  # characters of the rows read
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return used, rows
        except csv.Error as exc:
            if not final and reader.line_num == len(lines) and str(exc) == "unexpected end of data":
                return used, rows  # the rest waits for the next block
            quoted = any('"' in part for part in lines[start : reader.line_num])
            raise _malformed_row(line + start, str(exc), hint=quoted) from None
        spanned = lines[start : reader.line_num]
        if sum(part.count('"') for part in spanned) % 2:
            raise _malformed_row(line + start, "an unmatched quote", hint=True)
        row = _Fields(fields)
        row.lines = len(spanned)
        rows.append((line + start, row))
        used += sum(map(len, spanned))
        start = reader.line_num


#: The refusal of a CSV without a header.
EMPTY = "the CSV file is empty: expected a header with id and text (or title, description)"


def _header_problem(columns: list[str]) -> str | None:
    if not columns:
        return EMPTY
    repeated = [name for name, n in Counter(columns).items() if n > 1 and name]
    if repeated:
        return (
            f"the CSV file's header (line 1) names {', '.join(repeated)} more than once: "
            "each column needs a name of its own"
        )
    if "id" not in columns or not ("text" in columns or {"title", "description"} <= set(columns)):
        return (
            "the CSV file's header (line 1) needs an id column and a text column (or title and description); "
            f"found {', '.join(columns)}"
        )
    return None


def csv_chunks(
    stream: IO[bytes], size: int, block: int = BLOCK_BYTES
) -> Iterator[tuple[list[str], list[str]]]:
    """A CSV's ids and texts, ``size`` rows at a time, read from ``stream`` as it comes.

    Whatever is wrong with the file's form is refused as soon as it is read, naming the
    line: a malformed row, a header without the columns needed or naming one twice, a row
    with more fields than the header (a comma left unquoted: nothing is dropped), a blank
    line between rows. Blank lines at the end are ignored; a row with fewer fields than the
    header has its last ones empty, as :class:`csv.DictReader` reads it. The items
    themselves are checked by a :class:`Checker`.
    """
    rows = _rows(stream, block)
    first = next(rows, None)
    columns = first[1] if first is not None else []
    problem = _header_problem(columns)
    if problem is not None:
        for _ in rows:  # a malformed row anywhere is named first, as a wrong header may be its symptom
            pass
        raise BatchInputError(problem)
    width, id_at = len(columns), columns.index("id")
    text_at = columns.index("text") if "text" in columns else None
    title_at = columns.index("title") if text_at is None else 0
    description_at = columns.index("description") if text_at is None else 0
    ids: list[str] = []
    texts: list[str] = []
    blank_at = 0  # the first of the blank lines read since the last row, if any
    for line, row in rows:
        if not row:
            blank_at = blank_at or line
            continue
        if blank_at:
            raise _malformed_row(
                blank_at, "a blank line between rows (only blank lines at the end are ignored)", hint=False
            )
        if len(row) > width:
            raise _malformed_row(line, f"{len(row)} fields where the header has {width}", hint=True)
        if len(row) < width:
            row = row + [""] * (width - len(row))
        ids.append(row[id_at].strip())
        texts.append(
            row[text_at] if text_at is not None else project_text(row[title_at], row[description_at])
        )
        if len(ids) == size:
            yield ids, texts
            ids, texts = [], []
    if ids:
        yield ids, texts


#: Duplicate ids named exactly, at most: beyond, the count comes from their hashes.
_NAMED_DUPLICATES = 10_000
#: Hashes kept before the first check for duplicates among them (then at every doubling).
_FIRST_CHECK = 1 << 20


class Checker:
    """Checks a batch's items a chunk at a time, as they stream, and names every problem at the end.

    Each item's own problems are counted as its chunk passes (the first few kept for the
    message). Ids must be unique over the whole batch: a set of millions of short strings
    would cost ~80 bytes each, so only each id's 8-byte ``hash()`` is kept (SipHash, keyed per
    process: a client cannot aim for collisions), sorted in place to find repeats. Hashes that
    repeat are confirmed on the ids themselves, read again (from where the chunks were
    stored): a collision of two different ids refuses nothing.
    """

    def __init__(self, where: str = "row") -> None:
        self.where = where
        self.count = 0
        self.problems = 0
        self.shown: list[str] = []
        #: Grown by realloc with ~6% to spare (a numpy array grows by zero-filling, doubling what it touches).
        self._hashes = array("q")
        self._next_check = _FIRST_CHECK
        self._repeated: list[np.ndarray] = []

    def add(self, ids: list[str], texts: list[str]) -> list[Item]:
        """A chunk's items, in order; their own problems counted."""
        if not _all_valid(ids, texts):
            found = _positional(ids, texts, self.where, self.count)
            self.problems += len(found)
            self.shown += found[: max(0, _SHOWN - len(self.shown))]
        self._hashes.extend(map(hash, filter(None, ids)))
        self.count += len(ids)
        if len(self._hashes) >= self._next_check:
            self._find_repeats()
            self._next_check = 2 * max(len(self._hashes), _FIRST_CHECK // 2)
        return list(zip(ids, texts, strict=True))

    def _find_repeats(self) -> None:
        """Sort the hashes in place, set aside those repeated, and keep each once."""
        kept = np.frombuffer(self._hashes, np.int64)  # the array's own memory: sorted in place
        kept.sort()
        again = kept[1:] == kept[:-1]
        unique = len(kept)
        if again.any():
            self._repeated.append(np.unique(kept[1:][again]))
            once = kept[np.concatenate(([True], ~again))]
            unique = len(once)
            kept[:unique] = once
            del once
        del kept, again  # the array cannot shrink while a view of it exists
        del self._hashes[unique:]

    def check(self, ids_again: Callable[[], Iterable[list[str]]]) -> None:
        """Refuse the batch, naming its problems, if it has any; ``ids_again`` reads its ids again, in order."""
        if not self.count:
            raise BatchInputError(f"no {self.where}: a batch needs at least one")
        self._find_repeats()
        repeated = np.unique(np.concatenate(self._repeated)) if self._repeated else np.empty(0, np.int64)
        if not self.problems and not len(repeated):
            return
        duplicates: list[str] = []
        count = 0
        if len(repeated):
            seen: dict[str, int] = {}
            for ids in ids_again():
                present = [i for i in ids if i]
                hit = np.isin(np.fromiter(map(hash, present), np.int64, len(present)), repeated)
                for item_id in (present[n] for n in np.flatnonzero(hit)):
                    if item_id in seen or len(seen) < _NAMED_DUPLICATES:
                        seen[item_id] = seen.get(item_id, 0) + 1
            duplicates = _duplicates(id_ for id_, n in seen.items() for _ in range(min(n, 2)))
            count = len(duplicates) if len(repeated) <= _NAMED_DUPLICATES else len(repeated)
        total = self.problems + count
        if total:
            shown = (self.shown + duplicates)[:_SHOWN]
            more = f"; and {total - _SHOWN} more" if total > _SHOWN else ""
            raise BatchInputError(f"invalid batch: {'; '.join(shown)}{more}")


def read_csv(data: bytes, size: int = 1000) -> list[Item]:
    """Items from a CSV with an ``id`` column and ``text`` or ``title`` + ``description``, all in memory.

    For a file at hand (the CLI, tests); an upload streams through :func:`csv_chunks` instead.
    A malformed CSV is refused whole, naming the row, never read in part.
    """
    ids: list[str] = []
    texts: list[str] = []
    for chunk_ids, chunk_texts in csv_chunks(io.BytesIO(data), size):
        ids += chunk_ids
        texts += chunk_texts
    return _checked(ids, texts, where="row")

"""Batch input: items from JSON rows or a CSV upload, every problem named before any work starts."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coe_template.batch.items import (
    ITEM_ID,
    QUOTING,
    BatchInputError,
    Checker,
    _all_valid,
    _problems,
    csv_chunks,
    csv_rows,
    read_csv,
    to_items,
)
from tests.conftest import examples


def csv_refusal(data: bytes) -> str:
    """The whole message refusing this CSV."""
    with pytest.raises(BatchInputError) as info:
        read_csv(data)
    return str(info.value)


def refusal(rows, where: str = "items") -> str:
    """The whole message refusing these rows."""
    with pytest.raises(BatchInputError) as info:
        to_items(rows, where)
    return str(info.value)


# --- to_items: what is accepted --------------------------------------------------------------------


def test_text_items_become_items_in_input_order():
    rows = [{"id": "p-3", "text": "Third"}, {"id": "p-1", "text": "First"}, {"id": "p-2", "text": "Second"}]
    assert to_items(rows) == [("p-3", "Third"), ("p-1", "First"), ("p-2", "Second")]


def test_title_and_description_are_joined_into_the_text():
    items = to_items([{"id": "a", "title": "  yolo-lite ", "description": " Object detection on a Pi.  "}])
    assert items == [("a", "yolo-lite Object detection on a Pi.")]


def test_title_alone_or_description_alone_is_enough():
    items = to_items([{"id": "a", "title": "Only a title"}, {"id": "b", "description": "Only a description"}])
    assert [text for _, text in items] == ["Only a title", "Only a description"]


def test_text_and_title_description_items_can_be_mixed():
    items = to_items(
        [
            {"id": "p-1", "text": "Transformers for text"},
            {"id": "p-2", "title": "yolo", "description": "Object detection"},
        ]
    )
    assert items == [("p-1", "Transformers for text"), ("p-2", "yolo Object detection")]


def test_ids_are_stripped_and_may_use_every_allowed_character():
    allowed = "Az09._~:@-"
    items = to_items([{"id": f"  {allowed}  ", "text": "x"}, {"id": "x" * 200, "text": "y"}])
    assert [item_id for item_id, _ in items] == [allowed, "x" * 200]


def test_a_generator_of_rows_is_read_once_in_order():
    rows = ({"id": f"id-{n}", "text": f"text {n}"} for n in range(50))
    assert [item_id for item_id, _ in to_items(rows)] == [f"id-{n}" for n in range(50)]


# --- to_items: what is refused ---------------------------------------------------------------------


def test_no_items_is_refused():
    with pytest.raises(BatchInputError, match="no items: a batch needs at least one"):
        to_items([])


def test_a_batch_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        to_items([])


@pytest.mark.parametrize(
    "row",
    [
        {"text": "no id at all"},
        {"id": "", "text": "empty id"},
        {"id": "   ", "text": "blank id"},
        {"id": None, "text": "null id"},
    ],
)
def test_a_missing_id_is_refused_by_position(row):
    assert refusal([{"id": "ok", "text": "fine"}, row]) == "invalid batch: items[1] has no id"


@pytest.mark.parametrize("bad", ["a/b", "a b", "über", "a?b", "a#b", "x" * 201, "a%2Fb", "tab\there"])
def test_an_id_with_characters_unsafe_in_a_url_is_refused_by_position_and_id(bad):
    assert refusal([{"id": "ok", "text": "fine"}, {"id": bad, "text": "some text"}]) == (
        f"invalid batch: items[1] id {bad[:40]!r} must be 1-200 letters, digits or ._~:@-"
    )
    assert not ITEM_ID.fullmatch(bad)


def test_an_id_of_the_longest_length_is_accepted():
    assert to_items([{"id": "x" * 200, "text": "some text"}]) == [("x" * 200, "some text")]


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", None])
def test_an_empty_or_blank_text_is_refused_by_position_and_id(text):
    assert refusal([{"id": "ok", "text": "fine"}, {"id": "p-2", "text": text}]) == (
        "invalid batch: items[1] (id 'p-2') has no text"
    )


@pytest.mark.parametrize("text", ["\x00", "a\x00", "\x00b", "a\x00b"])
def test_a_text_holding_a_nul_character_is_refused_by_position_and_id(text):
    assert refusal([{"id": "ok", "text": "fine"}, {"id": "p-2", "text": text}]) == (
        "invalid batch: items[1] (id 'p-2') contains a NUL character"
    )


def test_a_blank_text_with_a_bad_id_is_named_twice_the_id_first():
    assert refusal([{"id": "a/b", "text": " "}]) == (
        "invalid batch: items[0] id 'a/b' must be 1-200 letters, digits or ._~:@-; "
        "items[0] (id 'a/b') has no text"
    )


def test_blank_title_and_description_is_no_text():
    with pytest.raises(BatchInputError, match=r"items\[0\] \(id 'p-1'\) has no text"):
        to_items([{"id": "p-1", "title": "  ", "description": ""}])


def test_a_duplicate_id_is_refused_naming_it():
    assert refusal([{"id": "p-1", "text": "a"}, {"id": "p-2", "text": "b"}, {"id": "p-1", "text": "c"}]) == (
        "invalid batch: id 'p-1' appears more than once"
    )


def test_ids_that_are_the_same_after_stripping_are_duplicates():
    assert refusal([{"id": "p-1", "text": "a"}, {"id": " p-1 ", "text": "b"}]) == (
        "invalid batch: id 'p-1' appears more than once"
    )


def test_missing_ids_are_not_duplicates_of_each_other():
    assert refusal([{"text": "a"}, {"id": "", "text": "b"}]) == (
        "invalid batch: items[0] has no id; items[1] has no id"
    )


def test_every_problem_is_named_in_one_message():
    assert refusal(
        [
            {"id": "", "text": "a"},
            {"id": "a/b", "text": "b"},
            {"id": "c", "text": " "},
            {"id": "d", "text": "d"},
            {"id": "d", "text": "again"},
        ]
    ) == (
        "invalid batch: items[0] has no id; items[1] id 'a/b' must be 1-200 letters, digits or ._~:@-; "
        "items[2] (id 'c') has no text; id 'd' appears more than once"
    )


def blank_texts(count: int) -> list[dict[str, str]]:
    return [{"id": f"p-{n}", "text": ""} for n in range(count)]


def test_five_problems_are_all_shown():
    assert refusal(blank_texts(5)) == "invalid batch: " + "; ".join(
        f"items[{n}] (id 'p-{n}') has no text" for n in range(5)
    )


def test_a_sixth_problem_is_summarised():
    assert (
        refusal(blank_texts(6))
        == "invalid batch: "
        + "; ".join(f"items[{n}] (id 'p-{n}') has no text" for n in range(5))
        + "; and 1 more"
    )


def test_many_problems_are_summarised_with_how_many_more():
    assert (
        refusal(blank_texts(12))
        == "invalid batch: "
        + "; ".join(f"items[{n}] (id 'p-{n}') has no text" for n in range(5))
        + "; and 7 more"
    )


def test_the_summary_counts_duplicates_too():
    rows = [{"id": "", "text": "x"} for _ in range(5)] + [{"id": "dup", "text": "x"}] * 2
    # Shown problems come first by position, the duplicates after them.
    assert refusal(rows) == (
        "invalid batch: " + "; ".join(f"items[{n}] has no id" for n in range(5)) + "; and 1 more"
    )


def test_the_name_used_in_messages_can_be_chosen():
    with pytest.raises(BatchInputError, match=r"row\[0\] has no id"):
        to_items([{"text": "x"}], where="row")
    with pytest.raises(BatchInputError, match="no row: a batch needs at least one"):
        to_items([], where="row")


# --- read_csv --------------------------------------------------------------------------------------


def test_csv_with_id_and_text():
    data = b"id,text\np-1,Transformers for text\np-2,Object detection\n"
    assert read_csv(data) == [("p-1", "Transformers for text"), ("p-2", "Object detection")]


def test_csv_with_id_title_and_description():
    data = b"id,title,description\np-1,yolo-lite,Object detection on a Pi\np-2,bert,\n"
    assert read_csv(data) == [("p-1", "yolo-lite Object detection on a Pi"), ("p-2", "bert")]


def test_csv_extra_columns_and_column_order_do_not_matter():
    data = b"tag,description,id,title\nx,Object detection,p-1,yolo\n"
    assert read_csv(data) == [("p-1", "yolo Object detection")]


def test_csv_with_a_byte_order_mark():
    data = "\ufeffid,text\np-1,Café résumé naïve\n".encode()
    assert read_csv(data) == [("p-1", "Café résumé naïve")]


def test_csv_quoted_fields_keep_newlines_commas_and_quotes():
    data = b'id,text\r\np-1,"first line\r\nsecond line, with ""quotes"""\r\np-2,"a\nb"\r\n'
    assert read_csv(data) == [("p-1", 'first line\r\nsecond line, with "quotes"'), ("p-2", "a\nb")]


def test_csv_without_a_trailing_newline():
    assert read_csv(b"id,text\np-1,last") == [("p-1", "last")]


@pytest.mark.parametrize(
    "header", ["text", "title,description", "id", "id,title", "id,description", "ident,text"]
)
def test_csv_missing_columns_are_refused_naming_the_columns_found(header):
    data = f"{header}\n{','.join('x' for _ in header.split(','))}\n".encode()
    assert csv_refusal(data) == (
        "the CSV file's header (line 1) needs an id column and a text column (or title and description); "
        f"found {header.replace(',', ', ')}"
    )


@pytest.mark.parametrize("data", [b"", "\ufeff".encode(), b"\n\n"])
def test_an_empty_csv_is_refused(data):
    assert csv_refusal(data) == (
        "the CSV file is empty: expected a header with id and text (or title, description)"
    )


def test_a_header_without_rows_is_no_items():
    assert csv_refusal(b"id,text\n") == "no row: a batch needs at least one"


def test_a_csv_that_is_not_utf8_is_refused():
    assert csv_refusal("id,text\np-1,Café\n".encode("latin-1")) == (
        "the CSV file is not UTF-8 text: 'utf-8' codec can't decode byte 0xe9 in position 15: "
        "invalid continuation byte"
    )


def test_a_utf16_csv_is_refused_as_not_utf8():
    assert csv_refusal("id,text\np-1,hello\n".encode("utf-16")) == (
        "the CSV file is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte"
    )


def test_csv_rows_are_checked_by_row_number():
    data = b"id,text\np-1,fine\n,no id\np/3,bad id\np-4,\np-1,duplicate\n"
    assert csv_refusal(data) == (
        "invalid batch: row[1] has no id; row[2] id 'p/3' must be 1-200 letters, digits or ._~:@-; "
        "row[3] (id 'p-4') has no text; id 'p-1' appears more than once"
    )


def test_a_short_csv_row_has_no_text():
    assert csv_refusal(b"id,text\np-1,fine\np-2\n") == "invalid batch: row[1] (id 'p-2') has no text"


def test_rows_of_different_lengths_are_each_filled_to_the_headers():
    assert read_csv(b"id,title,description\nb,t\nc,t,d\ne,,d\n") == [("b", "t"), ("c", "t d"), ("e", "d")]


def test_a_csv_text_with_a_nul_character_is_refused_by_row():
    assert csv_refusal(b"id,text\np-1,fine\np-2,a\x00b\n") == (
        "invalid batch: row[1] (id 'p-2') contains a NUL character"
    )


@pytest.mark.parametrize(
    ("data", "line", "error"),
    [
        (b'id,text\na,"hello\nb,world\n', 2, "unexpected end of data"),  # the rest of the file in one field
        (b'id,text\na,ok\nb,"never closed', 3, "unexpected end of data"),
        (b'id,text\na,"quoted"\nb,"never closed', 3, "unexpected end of data"),  # after quotes in pairs
        (b'"id,text\na,b\n', 1, "unexpected end of data"),  # in the header
        (b'id,text\na,ok\nb,"quoted"then more\n', 3, "',' expected after '\"'"),
        (b'id,text\na,"two\nlines"x\n', 2, "',' expected after '\"'"),
    ],
)
def test_a_csv_with_an_unclosed_or_stray_quote_is_refused_naming_the_line(data, line, error):
    with pytest.raises(BatchInputError) as info:
        read_csv(data)
    assert str(info.value) == (
        f"the CSV file is malformed in the row starting on line {line}: {error}; {QUOTING}"
    )


def test_a_lone_quote_inside_an_unquoted_field_is_refused_naming_the_line():
    with pytest.raises(BatchInputError) as info:
        read_csv(b'id,text\na,a 12" screen\nb,ok\n')
    assert str(info.value) == (
        f"the CSV file is malformed in the row starting on line 2: an unmatched quote; {QUOTING}"
    )


def test_quotes_in_pairs_inside_an_unquoted_field_are_kept_as_the_csv_module_reads_them():
    assert read_csv(b'id,text\na,the "best" model\n') == [("a", 'the "best" model')]


def test_a_malformed_csv_is_refused_not_crashed_on():
    with pytest.raises(BatchInputError) as info:
        read_csv(b"id,text\np-1," + b"x" * 200_000 + b"\n")
    assert str(info.value) == (
        "the CSV file is malformed in the row starting on line 2: field larger than field limit (131072)"
    )


def test_a_quote_left_open_over_a_large_file_is_refused_where_it_opened():
    with pytest.raises(BatchInputError) as info:
        read_csv(b'id,text\np-1,"open\n' + b"p,x\n" * 50_000)
    assert str(info.value) == (
        "the CSV file is malformed in the row starting on line 2: "
        f"field larger than field limit (131072); {QUOTING}"
    )


# --- csv_rows: the unquoted fast path reads what the csv module reads -----------------------------


@settings(max_examples=examples(500), deadline=None)
@given(st.text(alphabet=st.sampled_from('ab ,\n"\r\x00é'), max_size=60))
def test_csv_rows_are_the_csv_modules_rows(text):
    try:
        expected = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        with pytest.raises(csv.Error):
            list(csv_rows(text))
        return
    assert list(csv_rows(text)) == expected


def test_a_field_over_the_limit_is_found_on_the_fast_path_too():
    with pytest.raises(BatchInputError, match="field larger than field limit"):
        read_csv(b"id,text\np-1,unquoted " + b"x" * 200_000 + b"\n")


# --- the column-at-a-time check agrees with the item-by-item one ----------------------------------


@settings(max_examples=examples(500), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.sampled_from("ab-._~:@\n \x00é/"), max_size=4),
            st.text(alphabet=st.sampled_from("a \n\t\x00\u3000"), max_size=3),
        ),
        max_size=6,
    )
)
def test_the_fast_check_accepts_exactly_the_input_with_no_problem(pairs):
    ids, texts = [i for i, _ in pairs], [t for _, t in pairs]
    assert _all_valid(ids, texts) == (not _problems(ids, texts, "items"))


def test_an_id_hiding_a_newline_is_refused_though_each_of_its_lines_is_a_valid_id():
    with pytest.raises(BatchInputError, match=r"items\[0\] id 'a\\nb' must be"):
        to_items([{"id": "a\nb", "text": "object detection"}])


# --- read_csv reads every CSV the csv module writes, and refuses any with an unbalanced quote ---------

csv_fields = st.text(alphabet=st.sampled_from('ab ,\n"\r\x00é\t'), max_size=8)
csv_tables = st.lists(st.lists(csv_fields, min_size=1, max_size=4), max_size=5)
#: The default dialect's line terminator: with "\n", the csv module writes a lone "\r" unquoted and
#: cannot read it back itself.
dialects = st.fixed_dictionaries({"quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])})


def written(rows: list[list[str]], dialect: dict) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, **dialect).writerows(rows)
    return out.getvalue()


@settings(max_examples=examples(500), deadline=None)
@given(rows=csv_tables, dialect=dialects)
def test_csv_rows_read_back_exactly_what_the_csv_module_wrote(rows, dialect):
    assert list(csv_rows(written(rows, dialect))) == rows


@settings(max_examples=examples(300), deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.from_regex(ITEM_ID, fullmatch=True), csv_fields.filter(lambda t: t.strip() and "\x00" not in t)
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda item: item[0],
    ),
    dialect=dialects,
)
def test_read_csv_reads_back_exactly_the_items_the_csv_module_wrote(items, dialect):
    data = written([["id", "text"], *map(list, items)], dialect).encode()
    assert read_csv(data) == items


@settings(max_examples=examples(500), deadline=None)
@given(rows=csv_tables, dialect=dialects, at=st.integers(min_value=0))
def test_a_csv_with_one_quote_more_is_refused_naming_a_line(rows, dialect, at):
    text = written([["id", "text"], *rows], dialect)
    at %= len(text) + 1
    with pytest.raises(
        BatchInputError, match=r"^the CSV file is malformed in the row starting on line \d+: "
    ):
        read_csv((text[:at] + '"' + text[at:]).encode())


@settings(max_examples=examples(500), deadline=None)
@given(st.text(alphabet=st.sampled_from('ab ,\n"\r\x00é'), max_size=60).filter(lambda t: t.count('"') % 2))
def test_any_text_with_an_odd_number_of_quotes_is_refused(text):
    with pytest.raises(
        BatchInputError, match=r"^the CSV file is malformed in the row starting on line \d+: "
    ):
        read_csv(text.encode())


# --- nothing dropped in silence: every field read, every line accounted for -------------------------


def test_a_row_with_more_fields_than_the_header_is_refused_naming_its_line():
    data = b"id,text\nb,fine\na,Semantic segmentation, of satellite images with unet\n"
    assert csv_refusal(data) == (
        f"the CSV file is malformed in the row starting on line 3: 3 fields where the header has 2; {QUOTING}"
    )


def test_a_repeated_header_name_is_refused():
    assert csv_refusal(b"id,id,text\na,b,c\n") == (
        "the CSV file's header (line 1) names id more than once: each column needs a name of its own"
    )


def test_unnamed_extra_columns_may_repeat_their_empty_name():
    assert read_csv(b"id,text,,\na,object detection,,\n") == [("a", "object detection")]


@pytest.mark.parametrize("end", [b"\n", b"\n\n", b"\n\n\n\n", b"\r\n\r\n", b"\n\r\n"])
def test_blank_lines_at_the_end_are_ignored(end):
    assert read_csv(b"id,text\na,object detection" + end) == [("a", "object detection")]


def test_a_blank_line_between_rows_is_refused_naming_its_line():
    assert csv_refusal(b"id,text\na,x\n\n\nb,y\n") == (
        "the CSV file is malformed in the row starting on line 3: "
        "a blank line between rows (only blank lines at the end are ignored)"
    )


def test_a_lone_quote_is_refused_even_when_another_row_has_one_too():
    assert csv_refusal(b'id,text\na,a 12" screen\nb,a 15" screen\n') == (
        f"the CSV file is malformed in the row starting on line 2: an unmatched quote; {QUOTING}"
    )


# --- csv_chunks: the same rows whatever the blocks the upload is read in ---------------------------


def chunked(data: bytes, size: int, block: int) -> list[tuple[list[str], list[str]]]:
    return list(csv_chunks(io.BytesIO(data), size, block))


@settings(max_examples=examples(300), deadline=None)
@given(
    items=st.lists(
        st.tuples(st.from_regex(ITEM_ID, fullmatch=True), csv_fields.filter(lambda t: t.strip())),
        min_size=1,
        max_size=8,
    ),
    dialect=dialects,
    block=st.integers(min_value=1, max_value=40),
    size=st.integers(min_value=1, max_value=4),
)
def test_any_block_size_reads_the_same_chunks(items, dialect, block, size):
    data = written([["id", "text"], *map(list, items)], dialect).encode()
    ids, texts = [i for i, _ in items], [t for _, t in items]
    expected = [(ids[n : n + size], texts[n : n + size]) for n in range(0, len(items), size)]
    assert chunked(data, size, block) == expected


def test_a_malformed_row_is_named_by_its_line_whatever_the_blocks():
    data = b"id,text\n" + b"".join(b"r%d,x\n" % n for n in range(3000)) + b'late,"open\n'
    for block in (5, 64, 1 << 18):
        with pytest.raises(BatchInputError) as info:
            chunked(data, 1000, block)
        assert str(info.value) == (
            f"the CSV file is malformed in the row starting on line 3002: unexpected end of data; {QUOTING}"
        )


def test_a_byte_that_is_not_utf8_is_placed_in_the_whole_file_not_in_its_block():
    data = b"id,text\n" + b"a,x\n" * 100 + b"b,caf\xe9\n"
    with pytest.raises(BatchInputError) as info:
        chunked(data, 1000, 16)
    assert str(info.value) == (
        "the CSV file is not UTF-8 text: 'utf-8' codec can't decode byte 0xe9 in position 413: "
        "invalid continuation byte"
    )


def test_a_character_split_between_blocks_is_read_whole():
    data = "id,text\na,é€😀\n".encode()
    assert [chunked(data, 10, block) for block in range(1, 20)] == [[(["a"], ["é€😀"])]] * 19


def test_a_line_longer_than_a_row_may_be_is_refused_without_reading_it_all():
    data = b"id,text\na," + b"x," * 600_000 + b"\n"
    with pytest.raises(BatchInputError) as info:
        chunked(data, 1000, 1 << 16)
    assert str(info.value) == (
        "the CSV file is malformed in the row starting on line 2: a line longer than 1048576 characters"
    )


# --- Checker: a batch checked a chunk at a time names what a whole-batch check names ------------------


def streamed_refusal(data: bytes, size: int) -> str:
    checker = Checker()
    chunks = [checker.add(ids, texts) for ids, texts in csv_chunks(io.BytesIO(data), size)]
    with pytest.raises(BatchInputError) as info:
        checker.check(lambda: ([i for i, _ in chunk] for chunk in chunks))
    return str(info.value)


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_problems_across_chunks_are_named_as_in_one_piece(size):
    data = b"id,text\np-1,fine\n,no id\np/3,bad id\np-4,\np-1,duplicate\nq,x\nq,y\nr,\n"
    assert (
        streamed_refusal(data, size)
        == csv_refusal(data)
        == (
            "invalid batch: row[1] has no id; row[2] id 'p/3' must be 1-200 letters, digits or ._~:@-; "
            "row[3] (id 'p-4') has no text; row[7] (id 'r') has no text; id 'p-1' appears more than once; "
            "and 1 more"
        )
    )


def test_a_duplicate_far_apart_is_found():
    data = b"id,text\n" + b"".join(b"i%d,x\n" % n for n in range(5000)) + b"i7,again\n"
    assert streamed_refusal(data, 1000) == "invalid batch: id 'i7' appears more than once"


def test_many_duplicates_are_counted_past_the_first_check(monkeypatch):
    monkeypatch.setattr("coe_template.batch.items._FIRST_CHECK", 64)
    data = b"id,text\n" + b"".join(b"i%d,x\n" % (n % 300) for n in range(1000))
    assert streamed_refusal(data, 7) == (
        "invalid batch: id 'i0' appears more than once; id 'i1' appears more than once; "
        "id 'i2' appears more than once; id 'i3' appears more than once; "
        "id 'i4' appears more than once; and 295 more"
    )


def test_a_valid_batch_passes_the_streamed_check():
    checker = Checker()
    for ids, texts in csv_chunks(io.BytesIO(b"id,text\na,x\nb,y\n"), 1):
        checker.add(ids, texts)
    checker.check(lambda: iter(()))
    assert checker.count == 2

"""load_dataset and clean_text: what the trainer sees of a CSV, and every clear refusal."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coe_template.model.data import (
    _NON_ALNUM,
    _URL,
    ACCEPTED_TAGS,
    OTHER_TAG,
    DatasetError,
    clean_text,
    load_dataset,
)

#: Distinctive words per tag: a tiny dataset any bag-of-words model can learn.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "natural-language-processing": (
        "text",
        "language",
        "sentence",
        "tokens",
        "translation",
        "transformer",
        "sentiment",
        "corpus",
        "words",
        "embeddings",
        "parsing",
        "summarization",
    ),
    "computer-vision": (
        "image",
        "pixels",
        "camera",
        "video",
        "segmentation",
        "detection",
        "photos",
        "faces",
        "objects",
        "visual",
        "scenes",
        "convolutional",
    ),
    "mlops": (
        "deployment",
        "serving",
        "monitoring",
        "docker",
        "kubernetes",
        "registry",
        "drift",
        "latency",
        "production",
        "orchestration",
        "rollout",
        "observability",
    ),
    "other": (
        "tabular",
        "forecasting",
        "regression",
        "churn",
        "clustering",
        "sales",
        "timeseries",
        "recommender",
        "fraud",
        "credit",
        "inventory",
        "survival",
    ),
}


def project_rows(per_tag: int = 15, tags: tuple[str, ...] = tuple(VOCABULARY)) -> list[dict[str, str]]:
    """``per_tag`` rows for each tag, each row made of five of the tag's distinctive words."""
    rows = []
    for tag in tags:
        words = VOCABULARY[tag]
        for i in range(per_tag):
            n = len(words)
            a, b, c = words[(i + 1) % n], words[(i + 5) % n], words[(i + 7) % n]
            rows.append(
                {
                    "title": f"{words[i % n].title()} {words[(i + 3) % n]} project {i}",
                    "description": f"A study of {a}, {b} and {c}.",
                    "tag": tag,
                }
            )
    return rows


def write_rows(
    path: Path, rows: list[dict[str, str]], header: tuple[str, ...] = ("title", "description", "tag")
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- reading --------------------------------------------------------------------------------------


def test_reads_title_and_description_as_one_text_with_its_tag(write_csv):
    path = write_csv(
        [
            {"title": "Image tagger", "description": "Tags photos.", "tag": "computer-vision"},
            {
                "title": "  Spam filter ",
                "description": " Filters mail. ",
                "tag": "natural-language-processing",
            },
        ]
    )
    dataset = load_dataset(path)
    assert dataset.texts == ["Image tagger Tags photos.", "Spam filter Filters mail."]
    assert dataset.tags == ["computer-vision", "natural-language-processing"]
    assert len(dataset) == 2


def test_a_row_with_only_a_title_or_only_a_description_is_kept(write_csv):
    path = write_csv(
        [
            {"title": "Only a title", "description": "", "tag": "mlops"},
            {"title": "", "description": "Only a description", "tag": "other"},
            {"title": "  ", "description": "", "tag": "mlops"},
        ]
    )
    dataset = load_dataset(path)
    assert dataset.texts == ["Only a title", "Only a description"]
    assert dataset.tags == ["mlops", "other"]


def test_extra_columns_and_column_order_do_not_matter(write_csv):
    path = write_csv(
        [
            {"id": "1", "tag": "mlops", "description": "Serve models.", "title": "Server"},
            {"id": "2", "tag": "other", "description": "Sales.", "title": "Forecast"},
        ],
        header=("id", "tag", "description", "title"),
    )
    dataset = load_dataset(path)
    assert dataset.texts == ["Server Serve models.", "Forecast Sales."]
    assert dataset.tags == ["mlops", "other"]


@pytest.mark.parametrize("tag", ["reinforcement-learning", "graph-learning", "Computer-Vision", "", "nlp"])
def test_a_tag_outside_the_accepted_set_becomes_other(write_csv, tag):
    path = write_csv(
        [
            {"title": "A", "description": "a", "tag": tag},
            {"title": "B", "description": "b", "tag": "mlops"},
        ]
    )
    assert load_dataset(path).tags == [OTHER_TAG, "mlops"]


@pytest.mark.parametrize("tag", ACCEPTED_TAGS)
def test_accepted_tags_are_kept_even_with_surrounding_spaces(write_csv, tag):
    other = "mlops" if tag != "mlops" else "other"
    path = write_csv(
        [
            {"title": "A", "description": "a", "tag": f" {tag} "},
            {"title": "B", "description": "b", "tag": other},
        ]
    )
    assert load_dataset(path).tags == [tag, other]


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("title,description,tag\nCafé,Crème,mlops\nB,b,other\n".encode("utf-8-sig"))
    dataset = load_dataset(path)
    assert dataset.texts[0] == "Café Crème"
    assert dataset.tags == ["mlops", "other"]


# --- fingerprint ----------------------------------------------------------------------------------


def test_fingerprint_counts_rows_and_digests_the_file(write_csv):
    path = write_csv(project_rows(per_tag=3))
    fingerprint = load_dataset(path).fingerprint
    assert fingerprint == {"rows": 12, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_fingerprint_is_stable_and_changes_when_the_file_changes(write_csv):
    rows = project_rows(per_tag=3)
    first = load_dataset(write_csv(rows, name="a.csv")).fingerprint
    same = load_dataset(write_csv(rows, name="b.csv")).fingerprint
    assert first == same

    edited = [dict(rows[0], description=rows[0]["description"] + " More."), *rows[1:]]
    changed = load_dataset(write_csv(edited, name="c.csv")).fingerprint
    assert changed["rows"] == first["rows"]
    assert changed["sha256"] != first["sha256"]

    longer = load_dataset(write_csv([*rows, rows[0]], name="d.csv")).fingerprint
    assert longer["rows"] == len(rows) + 1 and first["rows"] == len(rows)
    assert longer["sha256"] != first["sha256"]


# --- clean_text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Transformers for TEXT Classification", "transformers for text classification"),
        ("See https://example.com/a?b=c for details", "see for details"),
        ("Docs at www.example.org/docs, code at http://git.example.com", "docs at code at"),
        ("Hello, world! (NLP) -- state-of-the-art.", "hello world nlp state of the art"),
        ("  many   spaces\tand\nlines  ", "many spaces and lines"),
        ("C++ & C#: 2 langs", "c c 2 langs"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_clean_text(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_clean_text_is_idempotent():
    text = "Object Detection: YOLOv8 on https://x.y/z, fast & accurate!"
    assert clean_text(clean_text(text)) == clean_text(text)


# --- clear errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DatasetError, match="not found") as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(DatasetError, match="is a directory") as info:
        load_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("missing", ["title", "description", "tag"])
def test_missing_column_is_named(write_csv, missing):
    header = tuple(c for c in ("title", "description", "tag") if c != missing)
    rows = [{c: "x" for c in header}, {c: "y" for c in header}]
    with pytest.raises(DatasetError, match="missing column") as info:
        load_dataset(write_csv(rows, header=header))
    message = str(info.value)
    assert f"missing column(s) {missing};" in message
    # ...and it lists what it did find, so the user can spot a misspelling.
    assert all(c in message for c in header)


def test_misspelled_column_is_reported_as_missing(write_csv):
    header = ("Title", "description", "tag")
    path = write_csv([{"Title": "A", "description": "a", "tag": "mlops"}], header=header)
    with pytest.raises(DatasetError, match=r"missing column\(s\) title; found Title, description, tag"):
        load_dataset(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(path)


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("title,description,tag\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(path)


def test_rows_without_any_text_count_as_no_rows(write_csv):
    path = write_csv([{"title": " ", "description": "", "tag": "mlops"}])
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(path)


def test_single_class(write_csv):
    path = write_csv([{"title": f"T{i}", "description": "d", "tag": "mlops"} for i in range(5)])
    with pytest.raises(DatasetError, match=r"single class \(mlops\)"):
        load_dataset(path)


def test_unknown_tags_folding_into_a_single_class_is_a_single_class(write_csv):
    path = write_csv(
        [
            {"title": "A", "description": "a", "tag": "graphs"},
            {"title": "B", "description": "b", "tag": "robotics"},
        ]
    )
    with pytest.raises(DatasetError, match=r"single class \(other\)"):
        load_dataset(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("title,description,tag\nCafé,crème brûlée,mlops\nB,b,other\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8") as info:
        load_dataset(path)
    assert str(path) in str(info.value)


@given(
    st.lists(
        st.sampled_from(
            [
                "http://",
                "https://x.io/a?b=1",
                "HTTP",
                "www.",
                "WWW.Site",
                "wwwx",
                "ht tp",
                "Text",
                " ",
                ",",
                "é",
                "\n",
                "::",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_clean_text_removes_links_wherever_they_are(text):
    assert clean_text(text) == _NON_ALNUM.sub(" ", _URL.sub(" ", text.lower())).strip()

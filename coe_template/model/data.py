"""Read labeled project descriptions and turn them into model inputs."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from coe_template.errors import InvalidInput

ACCEPTED_TAGS: tuple[str, ...] = (
    "natural-language-processing",
    "computer-vision",
    "mlops",
    "other",
)
OTHER_TAG = "other"
REQUIRED_COLUMNS = ("title", "description", "tag")

_URL = re.compile(r"https?://\S+|www\.\S+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class DatasetError(InvalidInput):
    """A data file cannot be used for training or evaluation."""


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    tags: list[str]
    fingerprint: dict[str, object]

    def __len__(self) -> int:
        return len(self.texts)


def bundled_dataset_path() -> Path:
    """The starter dataset shipped with the package, written for this project."""
    return Path(str(resources.files("coe_template") / "data" / "projects.csv"))


def clean_text(text: str) -> str:
    """Lower-case, drop links, make every run of characters other than a-z and 0-9 one space.

    Runs identically at training and at prediction time, so the two can never
    disagree on what a text means.
    """
    text = text.lower()
    if "http" in text or "www." in text:  # a link needs one of them: most texts skip the scan
        text = _URL.sub(" ", text)
    return _NON_ALNUM.sub(" ", text).strip()


def project_text(title: str, description: str) -> str:
    return f"{title.strip()} {description.strip()}".strip()


def normalise_tag(tag: str) -> str:
    """Map any tag outside the accepted set to ``other``."""
    tag = tag.strip()
    return tag if tag in ACCEPTED_TAGS else OTHER_TAG


def load_dataset(path: str | Path) -> Dataset:
    """Read a CSV with ``title``, ``description`` and ``tag`` columns.

    Raises :class:`DatasetError` with a message a person can act on for a
    missing file or column, an empty file, or a file with a single class.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"data path is a directory, not a CSV file: {path}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text: {exc}") from None

    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not columns:
        raise DatasetError(f"{path} is empty: expected a header with {', '.join(REQUIRED_COLUMNS)}")
    if missing:
        raise DatasetError(f"{path} is missing column(s) {', '.join(missing)}; found {', '.join(columns)}")

    texts: list[str] = []
    tags: list[str] = []
    for row in reader:
        text = project_text(row["title"] or "", row["description"] or "")
        if not text:
            continue
        texts.append(text)
        tags.append(normalise_tag(row["tag"] or ""))
    if not texts:
        raise DatasetError(f"{path} has a header but no rows with a title or description")
    classes = Counter(tags)
    if len(classes) < 2:
        raise DatasetError(
            f"{path} has a single class ({next(iter(classes))}): at least two are needed to train"
        )
    fingerprint = {"rows": len(texts), "sha256": hashlib.sha256(raw).hexdigest()}
    return Dataset(texts=texts, tags=tags, fingerprint=fingerprint)


def text_sha256(text: str) -> str:
    """A text's identity when training data and labelled rows are merged: the sha256 of its UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()


def with_labels(dataset: Dataset, labelled: list[tuple[str, str]]) -> Dataset:
    """The dataset and the labelled ``(text, tag)`` rows, one row per distinct labelled text.

    A label beats the dataset's row for the same text (a person looked at it since); of one text
    labelled several times, the last label counts. The fingerprint says how many rows came from where.
    """
    latest: dict[str, tuple[str, str]] = {}
    for text, tag in labelled:
        if text.strip():
            latest.pop(text_sha256(text), None)  # re-inserted: the dict keeps the order of last labels
            latest[text_sha256(text)] = (text, normalise_tag(tag))
    kept = [
        (t, tag) for t, tag in zip(dataset.texts, dataset.tags, strict=True) if text_sha256(t) not in latest
    ]
    rows = kept + list(latest.values())
    fingerprint = {
        **dataset.fingerprint,
        "rows": len(rows),
        "data": "bundled+labels",
        "bundled": len(kept),
        "labelled": len(latest),
        "duplicates_dropped": len(dataset) - len(kept) + len(labelled) - len(latest),
    }
    return Dataset(texts=[t for t, _ in rows], tags=[tag for _, tag in rows], fingerprint=fingerprint)

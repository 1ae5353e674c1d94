"""Training arguments: one validated, serialisable record per run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from coe_template.errors import InvalidInput, NotFound


class ArgsError(InvalidInput):
    """Training arguments are malformed; the message names each bad field."""


class UnknownArgument(NotFound):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown training argument {name!r}; known arguments: {', '.join(known)}")


def lookup_arg(args: dict[str, Any], name: str) -> Any:
    """One stored argument, or an error that names it and lists those that exist."""
    try:
        return args[name]
    except KeyError:
        raise UnknownArgument(name, sorted(args)) from None


@dataclass(frozen=True)
class TrainingArgs:
    analyzer: str = "word"
    ngram_max: int = 2
    min_df: int = 1
    max_df: float = 1.0
    sublinear_tf: bool = True
    stop_words: bool = True
    C: float = 10.0
    class_weight: str | None = "balanced"
    max_iter: int = 1000
    val_size: float = 0.15
    test_size: float = 0.15
    seed: int = 1234
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingArgsSchema(Schema):
    """Everything a client or an args file may set, with its bounds."""

    class Meta:
        unknown = RAISE

    analyzer = fields.String(validate=validate.OneOf(["word", "char_wb"]))
    ngram_max = fields.Integer(strict=True, validate=validate.Range(1, 5))
    min_df = fields.Integer(strict=True, validate=validate.Range(1, 100))
    max_df = fields.Float(validate=validate.Range(0.1, 1.0))
    sublinear_tf = fields.Boolean()
    stop_words = fields.Boolean()
    C = fields.Float(validate=validate.Range(1e-4, 1e4))
    class_weight = fields.String(allow_none=True, validate=validate.OneOf(["balanced"]))
    max_iter = fields.Integer(strict=True, validate=validate.Range(10, 100_000))
    val_size = fields.Float(validate=validate.Range(0.05, 0.4))
    test_size = fields.Float(validate=validate.Range(0.05, 0.4))
    seed = fields.Integer(strict=True, validate=validate.Range(0, 2**32 - 1))
    threshold = fields.Float(allow_none=True, validate=validate.Range(0.0, 1.0))

    @validates_schema
    def stop_words_need_words(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("stop_words") and data.get("analyzer", TrainingArgs.analyzer) != "word":
            raise ValidationError("stop words apply only to analyzer 'word'", "stop_words")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TrainingArgs:
        if data.get("analyzer", TrainingArgs.analyzer) != "word":
            data.setdefault("stop_words", False)  # the default applies to words only
        return TrainingArgs(**data)


def parse_args(data: dict[str, Any], defaults: TrainingArgs | None = None) -> TrainingArgs:
    """Validate a mapping of arguments; unset ones take ``defaults`` (e.g. the configured
    ``COE_TRAINING_ARGS``), else the built-in ones.

    A request that names the analyzer but not ``stop_words`` gets the stop-words default
    of that analyzer, not the one ``defaults`` chose for its own analyzer.
    """
    if defaults is not None:
        base = defaults.to_dict()
        if "analyzer" in data and "stop_words" not in data:
            del base["stop_words"]
        data = {**base, **data}
    try:
        return TrainingArgsSchema().load(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {' '.join(map(str, msgs))}"
            for field, msgs in sorted(exc.normalized_messages().items())
        )
        raise ArgsError(f"invalid training arguments: {problems}") from None


def load_args(path: str | Path) -> TrainingArgs:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArgsError(f"training arguments file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ArgsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArgsError(f"{path} must hold a JSON object of training arguments")
    return parse_args(data)

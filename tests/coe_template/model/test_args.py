"""parse_args / load_args: defaults, bounds and messages that name each bad field."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from coe_template.model.args import ArgsError, TrainingArgs, load_args, parse_args

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_empty_mapping_gives_the_defaults():
    args = parse_args({})
    assert args == TrainingArgs()
    assert args.to_dict() == {
        "analyzer": "word",
        "ngram_max": 2,
        "min_df": 1,
        "max_df": 1.0,
        "sublinear_tf": True,
        "stop_words": True,
        "C": 10.0,
        "class_weight": "balanced",
        "max_iter": 1000,
        "val_size": 0.15,
        "test_size": 0.15,
        "seed": 1234,
        "threshold": None,
    }


def test_unset_fields_keep_their_defaults():
    args = parse_args({"C": 0.5, "seed": 7})
    assert args.C == 0.5
    assert args.seed == 7
    assert args.ngram_max == TrainingArgs().ngram_max
    assert args.threshold is None


def test_to_dict_round_trips_through_parse_args():
    args = parse_args({"analyzer": "char_wb", "ngram_max": 4, "threshold": 0.3, "class_weight": None})
    assert parse_args(json.loads(json.dumps(args.to_dict()))) == args


def test_the_project_args_file_is_valid_and_matches_the_defaults():
    assert load_args(PROJECT_ROOT / "config" / "args.json") == TrainingArgs()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("analyzer", "word"),
        ("analyzer", "char_wb"),
        ("ngram_max", 1),
        ("ngram_max", 5),
        ("min_df", 1),
        ("min_df", 100),
        ("max_df", 0.1),
        ("max_df", 1.0),
        ("C", 1e-4),
        ("C", 1e4),
        ("class_weight", "balanced"),
        ("class_weight", None),
        ("max_iter", 10),
        ("max_iter", 100_000),
        ("val_size", 0.05),
        ("val_size", 0.4),
        ("test_size", 0.05),
        ("test_size", 0.4),
        ("seed", 0),
        ("seed", 2**32 - 1),
        ("threshold", 0.0),
        ("threshold", 1.0),
        ("threshold", None),
        ("sublinear_tf", False),
        ("stop_words", True),
    ],
)
def test_values_on_the_bounds_are_accepted(field, value):
    assert getattr(parse_args({field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("analyzer", "char"),
        ("ngram_max", 0),
        ("ngram_max", 6),
        ("min_df", 0),
        ("min_df", 101),
        ("max_df", 0.05),
        ("max_df", 1.5),
        ("C", 0.0),
        ("C", 1e5),
        ("C", -1),
        ("class_weight", "uniform"),
        ("max_iter", 9),
        ("max_iter", 100_001),
        ("val_size", 0.0),
        ("val_size", 0.5),
        ("test_size", 0.01),
        ("test_size", 0.41),
        ("seed", -1),
        ("seed", 2**32),
        ("threshold", -0.1),
        ("threshold", 1.01),
        ("ngram_max", "two"),
        ("C", "much"),
        ("seed", True),
        ("sublinear_tf", "perhaps"),
        ("ngram_max", None),
        ("seed", None),
        ("C", float("nan")),
        ("C", float("inf")),
    ],
)
def test_values_out_of_bounds_or_of_the_wrong_type_are_refused_naming_the_field(field, value):
    with pytest.raises(ArgsError) as info:
        parse_args({field: value})
    message = str(info.value)
    assert message.startswith("invalid training arguments: ")
    assert f"{field}: " in message


def test_unknown_field_is_refused_by_name():
    with pytest.raises(ArgsError, match="learning_rate: Unknown field"):
        parse_args({"learning_rate": 0.1})


def test_every_bad_field_is_named_in_one_message():
    with pytest.raises(ArgsError) as info:
        parse_args({"ngram_max": 9, "C": "lots", "epochs": 3, "analyzer": "word"})
    message = str(info.value)
    for field in ("ngram_max", "C", "epochs"):
        assert f"{field}: " in message
    assert "analyzer" not in message  # the good one is not blamed


def test_every_field_of_training_args_can_be_set():
    """No field is forgotten in the schema: each one can be set from outside."""
    custom = {
        "analyzer": "word",
        "ngram_max": 3,
        "min_df": 2,
        "max_df": 0.9,
        "sublinear_tf": False,
        "stop_words": True,
        "C": 1.5,
        "class_weight": None,
        "max_iter": 200,
        "val_size": 0.2,
        "test_size": 0.25,
        "seed": 42,
        "threshold": 0.5,
    }
    assert set(custom) == {f.name for f in fields(TrainingArgs)}
    assert parse_args(custom).to_dict() == custom


def test_stop_words_with_a_character_analyzer_are_refused_naming_the_field():
    with pytest.raises(ArgsError, match="stop_words: stop words apply only to analyzer 'word'"):
        parse_args({"analyzer": "char_wb", "stop_words": True})


@pytest.mark.parametrize(
    "data",
    [
        {"analyzer": "char_wb", "stop_words": False},
        {"analyzer": "char_wb"},
        {"analyzer": "word", "stop_words": True},
        {"stop_words": True},
    ],
)
def test_stop_words_go_with_the_word_analyzer(data):
    args = parse_args(data)
    assert args.stop_words == data.get("stop_words", False)


# --- load_args ------------------------------------------------------------------------------------


def test_load_args_reads_a_json_file(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"C": 2.0, "threshold": 0.25}), encoding="utf-8")
    args = load_args(path)
    assert args == TrainingArgs(C=2.0, threshold=0.25)


def test_load_args_names_the_bad_field_of_a_file(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"min_df": 0}), encoding="utf-8")
    with pytest.raises(ArgsError, match="min_df: "):
        load_args(path)


@pytest.mark.parametrize("content", ['{"C": 1.0', "C = 1.0", "", "{'C': 1.0}"])
def test_bad_json_file(tmp_path, content):
    path = tmp_path / "args.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ArgsError, match="is not valid JSON") as info:
        load_args(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", ["[1, 2]", '"C"', "3", "null", "true"])
def test_json_that_is_not_an_object(tmp_path, content):
    path = tmp_path / "args.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ArgsError, match="must hold a JSON object") as info:
        load_args(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ArgsError, match="not found") as info:
        load_args(path)
    assert str(path) in str(info.value)


def test_arguments_left_out_take_the_configured_defaults_and_given_ones_win():
    configured = parse_args({"C": 0.5, "seed": 99, "ngram_max": 1})
    args = parse_args({"C": 3.0}, defaults=configured)
    assert (args.C, args.seed, args.ngram_max, args.max_iter) == (3.0, 99, 1, TrainingArgs().max_iter)
    assert parse_args({}, defaults=configured) == configured


def test_a_request_naming_the_analyzer_gets_that_analyzers_stop_words_default():
    """The configured stop words belong to the configured analyzer: asking for characters drops them."""
    chars = parse_args({"analyzer": "char_wb"}, defaults=parse_args({"stop_words": True}))
    assert (chars.analyzer, chars.stop_words) == ("char_wb", False)
    with pytest.raises(ArgsError, match="stop_words: stop words apply only to analyzer 'word'"):
        parse_args({"stop_words": True}, defaults=parse_args({"analyzer": "char_wb"}))

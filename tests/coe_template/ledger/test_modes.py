"""COE_PREDICTION_LOG: what each value means, and what is refused (with the message an operator reads)."""

from __future__ import annotations

import pytest

from coe_template.ledger.modes import LogMode, parse_mode
from config.settings import Settings


@pytest.mark.parametrize(
    ("value", "mode", "keeps_any", "keeps_text"),
    [
        ("off", LogMode("off"), False, False),
        ("hash", LogMode("hash"), True, False),
        ("FULL", LogMode("full"), True, True),
        (" sample:0.25 ", LogMode("hash", 0.25), True, False),
        ("sample:1", LogMode("hash", 1.0), True, False),
    ],
)
def test_each_mode(value, mode, keeps_any, keeps_text):
    parsed = parse_mode(value)
    assert parsed == mode
    assert (parsed.keeps_any, parsed.keeps_text) == (keeps_any, keeps_text)


def test_a_sample_keeps_the_draws_below_its_fraction():
    mode = parse_mode("sample:0.25")
    assert [mode.chosen(draw) for draw in (0.0, 0.2499, 0.25, 0.9)] == [True, True, False, False]
    assert str(mode) == "sample:0.25"
    assert not LogMode("off").chosen(0.0)
    assert LogMode("full").chosen(0.99)


def test_the_default_is_hash_and_empty_means_the_default():
    assert Settings.from_env({}).prediction_log == LogMode("hash")
    assert Settings.from_env({"COE_PREDICTION_LOG": " "}).prediction_log == LogMode("hash")
    assert Settings.from_env({"COE_PREDICTION_LOG": "full"}).prediction_log == LogMode("full")


@pytest.mark.parametrize(
    "value", ["on", "sample", "sample:0", "sample:1.5", "sample:-1", "sample:nan", "sample:x"]
)
def test_other_values_are_refused_naming_the_variable(value):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"COE_PREDICTION_LOG": value})
    assert str(refused.value) == (
        "COE_PREDICTION_LOG must be `off`, `hash`, `full`, or `sample:<fraction>` (0 < fraction ≤ 1, "
        f"kept as in `hash`), not {value!r}"
    )


def test_the_queue_and_the_retention_are_settings():
    settings = Settings.from_env({"COE_PREDICTION_LOG_QUEUE": "50", "COE_PREDICTION_RETENTION_DAYS": "never"})
    assert (settings.prediction_log_queue, settings.prediction_retention) == (50, None)
    assert Settings.from_env({}).prediction_retention_days == 30.0

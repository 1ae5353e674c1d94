"""Settings.from_env: documented defaults, each variable read, bad values refused by name."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, Settings


def test_defaults_with_an_empty_environment():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.model_store == PROJECT_ROOT / "model-store"
    assert settings.training_args == PROJECT_ROOT / "config" / "args.json"
    assert settings.run_id is None
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.validate_responses is False


def test_the_default_paths_point_into_the_project():
    assert (PROJECT_ROOT / "config" / "settings.py").is_file()
    assert Settings().training_args.is_file()


def test_unrelated_variables_are_ignored():
    assert Settings.from_env({"HOME": "/root", "MAX_BODY_BYTES": "abc", "COE_OTHER": "x"}) == Settings()


def test_model_store_is_read(tmp_path):
    assert Settings.from_env({"COE_MODEL_STORE": str(tmp_path)}).model_store == tmp_path


def test_training_args_is_read(tmp_path):
    path = tmp_path / "args.json"
    settings = Settings.from_env({"COE_TRAINING_ARGS": str(path)})
    assert settings.training_args == path
    assert isinstance(settings.training_args, Path)


def test_run_id_is_read():
    assert Settings.from_env({"COE_RUN_ID": "20250101T000000Z-abcdef"}).run_id == "20250101T000000Z-abcdef"


def test_an_empty_run_id_means_the_newest_run():
    assert Settings.from_env({"COE_RUN_ID": ""}).run_id is None


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("2048", 2048), (" 4096 ", 4096), ("10485760", 10485760)]
)
def test_max_body_bytes_is_read(value, expected):
    assert Settings.from_env({"COE_MAX_BODY_BYTES": value}).max_body_bytes == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" True ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False),
])
def test_validate_responses_is_read(value, expected):
    assert Settings.from_env({"COE_VALIDATE_RESPONSES": value}).validate_responses is expected


def test_every_variable_at_once(tmp_path):
    settings = Settings.from_env({
        "COE_MODEL_STORE": str(tmp_path / "store"),
        "COE_TRAINING_ARGS": str(tmp_path / "args.json"),
        "COE_RUN_ID": "20250101T000000Z-abcdef",
        "COE_MAX_BODY_BYTES": "512",
        "COE_VALIDATE_RESPONSES": "true",
    })
    assert settings == Settings(
        model_store=tmp_path / "store",
        training_args=tmp_path / "args.json",
        run_id="20250101T000000Z-abcdef",
        max_body_bytes=512,
        validate_responses=True,
    )


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("abc", "must be a whole number, not 'abc'"),
        ("1.5", "must be a whole number, not '1.5'"),
        ("1MB", "must be a whole number, not '1MB'"),
        ("", "must be a whole number, not ''"),
        ("0", "must be positive, not 0"),
        ("-1", "must be positive, not -1"),
    ],
)
def test_bad_max_body_bytes_is_refused_by_name(value, complaint):
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_MAX_BODY_BYTES": value})
    assert str(info.value) == f"COE_MAX_BODY_BYTES {complaint}"


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "truee"])
def test_bad_validate_responses_is_refused_by_name(value):
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_VALIDATE_RESPONSES": value})
    message = str(info.value)
    assert message.startswith("COE_VALIDATE_RESPONSES must be one of")
    assert repr(value) in message
    # The message lists what is accepted.
    for accepted in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        assert f"'{accepted}'" in message


def test_settings_cannot_be_changed_after_creation():
    settings = Settings.from_env({})
    with pytest.raises(FrozenInstanceError):
        settings.max_body_bytes = 1  # type: ignore[misc]

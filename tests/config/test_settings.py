"""Settings.from_env: documented defaults, each variable read, bad values refused by name."""

from __future__ import annotations

import resource
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from coe_template.model.data import bundled_dataset_path
from config.settings import PROJECT_ROOT, Settings

ADMIN_KEY = "admin-key-0123456789"
OTHER_ADMIN_KEY = "admin-key-abcdefghij"
READ_KEY = "read-key-0123456789ab"
KEY_VARIABLES = [("COE_ADMIN_KEYS", "admin_keys"), ("COE_READ_KEYS", "read_keys")]


def test_defaults_with_an_empty_environment():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.model_store == PROJECT_ROOT / "model-store"
    assert settings.database_url is None
    assert settings.model_name == "project-tagger"
    assert settings.training_args == PROJECT_ROOT / "config" / "args.json"
    assert settings.training_data is None
    assert settings.admin_keys == frozenset()
    assert settings.read_keys == frozenset()
    assert settings.refresh_seconds == 2.0
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.validate_responses is False


def test_the_default_paths_point_into_the_project():
    assert (PROJECT_ROOT / "config" / "settings.py").is_file()
    assert Settings().training_args.is_file()


def test_run_id_is_no_longer_a_setting():
    """Which model is served is now the registry's ``production`` alias, not a variable."""
    assert not hasattr(Settings(), "run_id")
    assert Settings.from_env({"COE_RUN_ID": "20250101T000000Z-abcdef"}) == Settings()


def test_unrelated_variables_are_ignored():
    assert Settings.from_env({"HOME": "/root", "MAX_BODY_BYTES": "abc", "COE_OTHER": "x"}) == Settings()


def test_model_store_is_read(tmp_path):
    assert Settings.from_env({"COE_MODEL_STORE": str(tmp_path)}).model_store == tmp_path


def test_training_args_is_read(tmp_path):
    path = tmp_path / "args.json"
    settings = Settings.from_env({"COE_TRAINING_ARGS": str(path)})
    assert settings.training_args == path
    assert isinstance(settings.training_args, Path)


# --- the registry's database ---------------------------------------------------------------------


def test_the_database_defaults_to_a_sqlite_file_in_the_model_store(tmp_path):
    settings = Settings.from_env({"COE_MODEL_STORE": str(tmp_path)})
    assert settings.database_url is None
    assert settings.db_url == f"sqlite:///{tmp_path / 'registry.db'}"


def test_the_default_database_follows_the_default_store():
    assert Settings().db_url == f"sqlite:///{PROJECT_ROOT / 'model-store' / 'registry.db'}"


def test_database_url_is_read(tmp_path):
    url = "postgresql+psycopg://user@db.example:5432/registry"
    settings = Settings.from_env({"DATABASE_URL": url, "COE_MODEL_STORE": str(tmp_path)})
    assert settings.database_url == url
    assert settings.db_url == url  # the store no longer decides where the registry lives


def test_an_empty_database_url_means_the_default():
    settings = Settings.from_env({"DATABASE_URL": ""})
    assert settings.database_url is None
    assert settings.db_url.startswith("sqlite:///")


def test_artifacts_are_kept_in_the_store_directory_unless_the_database_is_chosen():
    assert Settings.from_env({}).artifact_store == "directory"
    assert Settings.from_env({"COE_ARTIFACT_STORE": ""}).artifact_store == "directory"
    assert Settings.from_env({"COE_ARTIFACT_STORE": " DB "}).artifact_store == "db"


def test_an_unknown_artifact_store_is_refused_by_name():
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_ARTIFACT_STORE": "s3"})
    assert str(info.value) == "COE_ARTIFACT_STORE must be one of ['directory', 'db'], not 's3'"


# --- model name and training data ----------------------------------------------------------------


def test_model_name_is_read():
    assert Settings.from_env({"COE_MODEL_NAME": "ticket-router"}).model_name == "ticket-router"


def test_an_empty_model_name_means_the_default():
    assert Settings.from_env({"COE_MODEL_NAME": ""}).model_name == "project-tagger"


def test_training_data_defaults_to_the_bundled_dataset():
    settings = Settings.from_env({})
    assert settings.training_data is None
    assert settings.training_data_path == bundled_dataset_path()
    assert settings.training_data_path.is_file()


def test_training_data_is_read(tmp_path):
    path = tmp_path / "projects.csv"
    settings = Settings.from_env({"COE_TRAINING_DATA": str(path)})
    assert settings.training_data == path
    assert isinstance(settings.training_data, Path)
    assert settings.training_data_path == path


def test_an_empty_training_data_means_the_bundled_dataset():
    assert Settings.from_env({"COE_TRAINING_DATA": ""}).training_data_path == bundled_dataset_path()


# --- API keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable, field", KEY_VARIABLES)
def test_keys_are_read_comma_separated_and_trimmed(variable, field):
    settings = Settings.from_env({variable: f" {ADMIN_KEY} ,{OTHER_ADMIN_KEY},, "})
    assert getattr(settings, field) == frozenset({ADMIN_KEY, OTHER_ADMIN_KEY})


@pytest.mark.parametrize("variable, field", KEY_VARIABLES)
def test_a_single_key_is_read(variable, field):
    assert getattr(Settings.from_env({variable: ADMIN_KEY}), field) == frozenset({ADMIN_KEY})


@pytest.mark.parametrize("variable, field", KEY_VARIABLES)
@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_empty_keys_mean_none(variable, field, value):
    assert getattr(Settings.from_env({variable: value}), field) == frozenset()


def test_admin_and_read_keys_are_kept_apart():
    settings = Settings.from_env({"COE_ADMIN_KEYS": ADMIN_KEY, "COE_READ_KEYS": READ_KEY})
    assert settings.admin_keys == frozenset({ADMIN_KEY})
    assert settings.read_keys == frozenset({READ_KEY})


def test_a_key_of_exactly_16_characters_is_accepted():
    key = "k" * 16
    assert Settings.from_env({"COE_ADMIN_KEYS": key}).admin_keys == frozenset({key})


@pytest.mark.parametrize("variable", ["COE_ADMIN_KEYS", "COE_READ_KEYS"])
@pytest.mark.parametrize("value", ["short", "k" * 15, f"{ADMIN_KEY},short", " 123456789012345 "])
def test_a_short_key_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValueError) as info:
        Settings.from_env({variable: value})
    message = str(info.value)
    assert message.startswith(f"{variable}:")
    assert "16 characters" in message


def test_a_short_key_is_not_echoed_in_the_error():
    """Error messages end up in logs; a secret, even a bad one, must not."""
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_ADMIN_KEYS": "s3cr3t-pw"})
    assert "s3cr3t-pw" not in str(info.value)


# --- refresh interval ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("1", 1.0), ("0.5", 0.5), (" 30 ", 30.0), ("2.25", 2.25)])
def test_refresh_seconds_is_read(value, expected):
    settings = Settings.from_env({"COE_REFRESH_SECONDS": value})
    assert settings.refresh_seconds == expected
    assert isinstance(settings.refresh_seconds, float)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("abc", "must be a number, not 'abc'"),
        ("1s", "must be a number, not '1s'"),
        ("", "must be a number, not ''"),
        ("0", "must be a positive, finite number, not '0'"),
        ("-1.5", "must be a positive, finite number, not '-1.5'"),
        ("nan", "must be a positive, finite number, not 'nan'"),
        ("inf", "must be a positive, finite number, not 'inf'"),
    ],
)
def test_bad_refresh_seconds_is_refused_by_name(value, complaint):
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_REFRESH_SECONDS": value})
    assert str(info.value) == f"COE_REFRESH_SECONDS {complaint}"


# --- body size and response validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("2048", 2048), (" 4096 ", 4096), ("10485760", 10485760)]
)
def test_max_body_bytes_is_read(value, expected):
    assert Settings.from_env({"COE_MAX_BODY_BYTES": value}).max_body_bytes == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        (" True ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_validate_responses_is_read(value, expected):
    assert Settings.from_env({"COE_VALIDATE_RESPONSES": value}).validate_responses is expected


def test_every_variable_at_once(tmp_path):
    settings = Settings.from_env(
        {
            "COE_MODEL_STORE": str(tmp_path / "store"),
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/registry",
            "COE_MODEL_NAME": "ticket-router",
            "COE_TRAINING_ARGS": str(tmp_path / "args.json"),
            "COE_TRAINING_DATA": str(tmp_path / "projects.csv"),
            "COE_ADMIN_KEYS": f"{ADMIN_KEY},{OTHER_ADMIN_KEY}",
            "COE_READ_KEYS": READ_KEY,
            "COE_REFRESH_SECONDS": "0.25",
            "COE_MAX_BODY_BYTES": "512",
            "COE_VALIDATE_RESPONSES": "true",
        }
    )
    assert settings == Settings(
        model_store=tmp_path / "store",
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/registry",
        model_name="ticket-router",
        training_args=tmp_path / "args.json",
        training_data=tmp_path / "projects.csv",
        admin_keys=frozenset({ADMIN_KEY, OTHER_ADMIN_KEY}),
        read_keys=frozenset({READ_KEY}),
        refresh_seconds=0.25,
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
        ("0", "must be a positive, finite number, not '0'"),
        ("-1", "must be a positive, finite number, not '-1'"),
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


def test_batch_leases_are_short_and_batch_runs_in_the_server_by_default():
    settings = Settings.from_env({})
    assert settings.batch_lease_seconds == 15.0  # renewed every 5 s while a chunk is worked
    assert settings.batch_in_server is True  # `make serve` runs everything; production sets it false
    assert Settings.from_env({"COE_BATCH_IN_SERVER": "false"}).batch_in_server is False


# --- the database's limits and the training limit ------------------------------------------------


def test_database_limits_default_below_connexions_ten_threads():
    limits = Settings().database_limits
    assert (limits.timeout, limits.pool_size, limits.pool_wait) == (5.0, 5, 1.0)
    assert limits.pool_size < 10
    assert Settings().max_trainings == 2


def test_database_and_training_limits_are_read():
    settings = Settings.from_env(
        {
            "COE_DB_TIMEOUT": "2.5",
            "COE_DB_POOL_SIZE": "3",
            "COE_DB_POOL_WAIT": "0.25",
            "COE_MAX_TRAININGS": "1",
            "COE_TRAINING_TIMEOUT": "90.5",
        }
    )
    assert (settings.db_timeout, settings.db_pool_size, settings.db_pool_wait) == (2.5, 3, 0.25)
    assert settings.max_trainings == 1
    assert settings.training_timeout_seconds == 90.5


def test_a_training_is_stopped_after_an_hour_by_default():
    assert Settings.from_env({}).training_timeout_seconds == 3600.0


@pytest.mark.parametrize(
    "variable",
    ["COE_DB_TIMEOUT", "COE_DB_POOL_SIZE", "COE_DB_POOL_WAIT", "COE_MAX_TRAININGS", "COE_TRAINING_TIMEOUT"],
)
@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_limits_are_refused_by_name(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_reads_are_open_and_cors_is_off_by_default():
    settings = Settings.from_env({})
    assert settings.require_keys_for_reads is False
    assert settings.cors_origins == ()


def test_keys_for_reads_and_cors_origins_are_read():
    settings = Settings.from_env(
        {
            "COE_REQUIRE_KEYS_FOR_READS": "true",
            "COE_READ_KEYS": READ_KEY,
            "COE_CORS_ORIGINS": " https://app.example.com/, http://localhost:3000,,https://app.example.com",
        }
    )
    assert settings.require_keys_for_reads is True
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert Settings.from_env({"COE_CORS_ORIGINS": "*"}).cors_origins == ("*",)


def test_keys_for_reads_without_any_key_is_refused():
    with pytest.raises(ValueError, match="COE_REQUIRE_KEYS_FOR_READS=true needs keys"):
        Settings.from_env({"COE_REQUIRE_KEYS_FOR_READS": "yes"})


@pytest.mark.parametrize(
    "origin", ["app.example.com", "https://app.example.com/path", "ftp://x.org", "https://*.x.org"]
)
def test_a_cors_origin_that_is_not_one_is_refused(origin):
    with pytest.raises(ValueError, match="COE_CORS_ORIGINS: .* is not an origin"):
        Settings.from_env({"COE_CORS_ORIGINS": origin})


# --- the server's limits on slow and large requests ----------------------------------------------

SERVER_LIMITS = [
    ("COE_BODY_TIMEOUT", "body_timeout", 30.0, "2.5", 2.5),
    ("COE_BODY_MIN_RATE", "body_min_rate", 1_000_000.0, "5000", 5000.0),
    ("COE_HEADER_TIMEOUT", "header_timeout", 10.0, "1", 1.0),
    ("COE_MAX_HEADER_BYTES", "max_header_bytes", 32 * 1024, "8192", 8192),
    ("COE_LIMIT_CONCURRENCY", "limit_concurrency", 256, "64", 64),
]


@pytest.mark.parametrize(("variable", "field", "default", "value", "expected"), SERVER_LIMITS)
def test_server_limits_have_defaults_and_are_read(variable, field, default, value, expected):
    assert getattr(Settings.from_env({}), field) == default
    assert getattr(Settings.from_env({variable: value}), field) == expected


@pytest.mark.parametrize(("variable", "field", "default", "value", "expected"), SERVER_LIMITS)
def test_bad_server_limits_are_refused_by_name(variable, field, default, value, expected):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: "0"})


def test_the_body_budget_is_two_uploads_by_default_and_follows_the_upload_limit():
    assert Settings.from_env({}).body_budget_bytes == 100 << 20
    assert Settings.from_env({"COE_MAX_UPLOAD_BYTES": "3000000"}).body_budget_bytes == 6_000_000
    assert Settings.from_env({"COE_MAX_BUFFERED_BYTES": "60000000"}).body_budget_bytes == 60_000_000


def test_a_body_budget_below_the_upload_limit_is_refused():
    """A body within the limits would always be answered busy."""
    with pytest.raises(ValueError, match="COE_MAX_BUFFERED_BYTES must be at least COE_MAX_UPLOAD_BYTES"):
        Settings.from_env({"COE_MAX_BUFFERED_BYTES": "1000000"})


def test_the_connection_limit_follows_the_open_file_limit_unless_set():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert Settings.from_env({}).connection_limit == max(64, soft * 3 // 4)
    assert Settings.from_env({"COE_MAX_CONNECTIONS": "5000"}).connection_limit == 5000


@pytest.mark.parametrize("variable", ["COE_MAX_BUFFERED_BYTES", "COE_MAX_CONNECTIONS"])
def test_bad_budget_or_connection_limit_is_refused_by_name(variable):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: "-1"})


def test_the_default_body_budget_fits_two_of_the_largest_bodies_whichever_limit_is_larger():
    assert Settings.from_env({"COE_MAX_UPLOAD_BYTES": "1000"}).body_budget_bytes == 2 << 20


# --- the worker's metrics endpoint ---------------------------------------------------------------


def test_the_worker_serves_no_metrics_unless_given_a_port():
    settings = Settings.from_env({})
    assert settings.worker_metrics_port == 0
    assert settings.worker_metrics_addr == "0.0.0.0"
    assert Settings.from_env({"COE_WORKER_METRICS_PORT": "", "COE_WORKER_METRICS_ADDR": " "}) == settings
    assert Settings.from_env({"COE_WORKER_METRICS_PORT": "0"}).worker_metrics_port == 0


def test_the_worker_metrics_port_and_address_are_read():
    settings = Settings.from_env(
        {"COE_WORKER_METRICS_PORT": " 9101 ", "COE_WORKER_METRICS_ADDR": "127.0.0.1"}
    )
    assert (settings.worker_metrics_port, settings.worker_metrics_addr) == (9101, "127.0.0.1")


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "65536", "9101/tcp"])
def test_a_worker_metrics_port_that_is_not_one_is_refused_by_name(value):
    with pytest.raises(ValueError) as info:
        Settings.from_env({"COE_WORKER_METRICS_PORT": value})
    assert str(info.value) == (
        f"COE_WORKER_METRICS_PORT must be a port number (1-65535), or 0 for none, not {value.strip()!r}"
    )


# --- batch retention and the public URL -------------------------------------------------------------


def test_finished_batch_jobs_are_kept_a_week_by_default():
    from datetime import timedelta

    assert Settings.from_env({}).batch_retention == timedelta(days=7)
    assert Settings.from_env({"COE_BATCH_RETENTION_DAYS": " "}).batch_retention == timedelta(days=7)


@pytest.mark.parametrize(
    ("value", "days"), [("30", 30.0), ("0.5", 0.5), (" 2 ", 2.0), ("never", None), ("NEVER", None)]
)
def test_batch_retention_is_read_in_days_or_never(value, days):
    from datetime import timedelta

    settings = Settings.from_env({"COE_BATCH_RETENTION_DAYS": value})
    assert settings.batch_retention_days == days
    assert settings.batch_retention == (None if days is None else timedelta(days=days))


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e400", "week", "７", "1_0", "forever"])
def test_a_bad_batch_retention_is_refused_by_name(value):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"COE_BATCH_RETENTION_DAYS": value})
    assert str(refused.value) == (
        f"COE_BATCH_RETENTION_DAYS must be a positive number of days, or 'never', not {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/", "https://api.example.com"),
        ("http://tagger.internal:8080/coe/v1/", "http://tagger.internal:8080/coe/v1"),
        ("http://10.0.0.7:8000", "http://10.0.0.7:8000"),
        ("http://[2001:db8::1]:8000/api", "http://[2001:db8::1]:8000/api"),
    ],
)
def test_the_public_url_is_read_without_its_trailing_slash(value, expected):
    assert Settings.from_env({"COE_PUBLIC_URL": value}).public_url == expected


@pytest.mark.parametrize(
    "value",
    [
        "api.example.com",  # no scheme
        "ftp://api.example.com",
        "https://user:secret@api.example.com",
        "https://api.example.com?x=1",
        "https://api.example.com/#top",
        "https://api.example.com:0",
        "https://api.example.com:65536",
        "https://api.example.com:99999999999999999999",
        "https://[::g]:8000",
        "https://exa mple.com",
        "https://ëxample.com",
        "https://api.example.com/a b",
        "https://",
    ],
)
def test_a_public_url_that_is_not_a_base_url_is_refused_by_name(value):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({"COE_PUBLIC_URL": value})
    assert str(refused.value) == (
        "COE_PUBLIC_URL must be a base URL like https://api.example.com[:port][/prefix] "
        f"(http or https; no credentials, query or fragment), not {value!r}"
    )


# --- batch quotas ------------------------------------------------------------------------------------


def test_batch_quotas_default_to_one_full_upload_per_client_and_four_in_all():
    settings = Settings.from_env({})
    assert (settings.batch_max_open_items_per_client, settings.batch_max_open_items) == (
        6_000_000,
        24_000_000,
    )


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("COE_BATCH_MAX_OPEN_ITEMS_PER_CLIENT", "batch_max_open_items_per_client"),
        ("COE_BATCH_MAX_OPEN_ITEMS", "batch_max_open_items"),
    ],
)
def test_batch_quotas_are_read_and_must_be_positive_whole_numbers(variable, field):
    assert getattr(Settings.from_env({variable: "1000"}), field) == 1000
    with pytest.raises(ValueError) as info:
        Settings.from_env({variable: "0"})
    assert str(info.value) == f"{variable} must be a positive, finite number, not '0'"


# --- one declaration per variable ---------------------------------------------------------------------


def test_every_setting_is_declared_once_with_a_variable_and_a_meaning():
    from dataclasses import fields

    from config.settings import ServerSettings
    from config.variables import variables

    declared = [var for cls in (Settings, ServerSettings) for _field, var in variables(cls)]
    assert len(declared) == len(fields(Settings)) + len(fields(ServerSettings))
    names = [var.name for var in declared]
    assert len(set(names)) == len(names)
    assert all(var.doc and var.parser.accepts for var in declared)


def test_the_server_settings_have_defaults_and_are_read():
    import os

    from config.settings import ServerSettings

    assert ServerSettings.from_env({}) == ServerSettings(
        bind="0.0.0.0:8000", workers=os.cpu_count() or 1, graceful=30, metrics_dir=None, control_socket=None
    )
    read = ServerSettings.from_env(
        {
            "COE_BIND": "127.0.0.1:8080",
            "WEB_CONCURRENCY": "3",
            "COE_GRACEFUL": "0",
            "COE_CONTROL_SOCKET": "/s",
        }
    )
    assert (read.bind, read.workers, read.graceful, read.control_socket) == ("127.0.0.1:8080", 3, 0, "/s")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be a positive, finite number, not '0'"),
        ("WEB_CONCURRENCY", "four", "WEB_CONCURRENCY must be a whole number, not 'four'"),
        ("COE_GRACEFUL", "-1", "COE_GRACEFUL must be a whole number of seconds (0 or more), not '-1'"),
    ],
)
def test_bad_server_settings_are_refused_by_name(variable, value, message):
    from config.settings import ServerSettings

    with pytest.raises(ValueError) as info:
        ServerSettings.from_env({variable: value})
    assert str(info.value) == message

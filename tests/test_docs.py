"""The docs site's pages agree with the code they describe."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from config.settings import ServerSettings, Settings
from config.variables import variables
from tests.conftest import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
#: Set by config/gunicorn.py for its own workers, never by an operator.
INTERNAL = {"COE_METRICS_DIR_CREATED", "COE_METRICS_DIR_OWNER"}
_QUOTED = re.compile(r"\"((?:COE|DATABASE|WEB|PROMETHEUS)_[A-Z_]*[A-Z])\"")
_READ = re.compile(r"os\.(?:environ\.get|environ\.pop|environ\[|getenv)\(?\s*\"([A-Za-z_][A-Za-z0-9_]*)\"")
DECLARED = [var.name for cls in (Settings, ServerSettings) for _field, var in variables(cls)]


def _macros() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_macros", DOCS / "macros.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_variable_read_is_declared_in_the_settings():
    """A variable read anywhere in config/ (or by the domain or the HTTP layer) has one declaration."""
    read: set[str] = set()
    for package in ("config", "coe_template", "handlers"):
        for source in (PROJECT_ROOT / package).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            read |= set(_READ.findall(text))
            if package == "config":
                read |= set(_QUOTED.findall(text))
    assert sorted(read - INTERNAL - set(DECLARED)) == []


def test_the_configuration_page_is_the_declarations_table():
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert page.startswith("---\nrender_macros: true\n---\n")
    assert "\n{{ configuration_reference() }}\n" in page
    rendered = _macros().configuration_reference()
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+) \| (.+) \| (.+) \|$", rendered, re.MULTILINE)
    assert [name for name, *_cells in rows] == DECLARED
    row = dict((name, cells) for name, *cells in rows)
    assert row["COE_BATCH_RETENTION_DAYS"] == [
        "days a finished batch job and its results are kept after `finished_at` (its `expires_at`); "
        "then whoever works batch chunks removes it in bounded steps; `never` keeps every job",
        "a positive number of days (fractions allowed), or `never`",
        "`7`",
    ]
    assert row["COE_REQUIRE_KEYS_FOR_READS"][2] == "`false`: reads and predictions open"
    assert row["COE_LOG_LEVEL"][1:] == ["one of `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`", "`INFO`"]


def test_every_path_the_layout_page_lists_exists() -> None:
    """docs/layout.md's file list follows the code: a file moved or renamed without it fails here."""
    page = (DOCS / "layout.md").read_text(encoding="utf-8")
    listing = page.split("```")[1]
    named = [
        line.split()[0].rstrip(",")
        for line in listing.splitlines()
        if line and not line.startswith(" ") and ("/" in line.split()[0] or "." in line.split()[0])
    ]
    assert len(named) > 30
    assert [path for path in named if not (PROJECT_ROOT / path).exists()] == []

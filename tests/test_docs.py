"""The docs site's pages agree with the code they describe."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
#: Set by config/gunicorn.py for its own workers, never by an operator.
INTERNAL = {"COE_METRICS_DIR_CREATED", "COE_METRICS_DIR_OWNER"}
_VARIABLE = re.compile(r"\"((?:COE|DATABASE|WEB|PROMETHEUS)_[A-Z_]*[A-Z])\"")


def test_the_configuration_page_names_every_variable_the_settings_read_and_no_other() -> None:
    read = {
        name
        for source in ("config/settings.py", "config/gunicorn.py")
        for name in _VARIABLE.findall((PROJECT_ROOT / source).read_text(encoding="utf-8"))
    } - INTERNAL
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([A-Z_]+)`", page, re.MULTILINE))
    assert (sorted(read - listed), sorted(listed - read)) == ([], [])


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

"""Per-app state the handlers read: the model loaded when the app was created."""

from __future__ import annotations

from flask import current_app

from coe_template.store import Artifacts

EXTENSION = "coe_template"


def serving() -> Artifacts:
    """The artifacts of the model this app serves (loaded once, never per request)."""
    return current_app.extensions[EXTENSION]

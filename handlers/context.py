"""The handlers' way to the app's services (built by :mod:`coe_template.bootstrap`, kept on the Flask app)."""

from __future__ import annotations

from flask import current_app

from coe_template.bootstrap import Services
from coe_template.serving import Served

EXTENSION = "coe_template"


def services() -> Services:
    return current_app.extensions[EXTENSION]


def serving() -> Served:
    """The ``production`` version this process serves (read once per request)."""
    return services().server.current

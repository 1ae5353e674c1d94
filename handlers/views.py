"""Each operation's handler decorated once, when the app is built, not at every request.

Connexion 3's Flask view for an operation (``connexion.apps.flask.FlaskOperation``) builds a
``FlaskDecorator`` on every call, and that decorator wraps the handler again on every call
(``inspect.signature`` of it, three ``functools.wraps``): about a tenth of a one-text
prediction's CPU. The wrapping depends on the handler alone (the request and the operation
are read when the wrapped function runs), so it is done here once; what runs per request is
what Connexion's wrapper runs, minus the re-wrapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connexion.apps.flask import FlaskOperation
from connexion.decorators import FlaskDecorator
from flask import Flask


def decorated_once(view: FlaskOperation) -> Callable[..., Any]:
    decorator = FlaskDecorator(pythonic_params=view.pythonic_params, jsonifier=view.jsonifier)
    function = decorator.decorate(view._fn)  # noqa: SLF001  the handler FlaskOperation wraps

    def call(*_args: Any, **_kwargs: Any) -> Any:  # Flask's path arguments: Connexion reads its own
        return function(decorator.framework.get_request(uri_parser=decorator.uri_parser))

    call.__name__ = view.operation_id
    return call


def decorate_once(app: Flask) -> None:
    """Replace every Connexion operation's view in ``app`` by :func:`decorated_once` of it."""
    for endpoint, view in list(app.view_functions.items()):
        if isinstance(view, FlaskOperation):
            app.view_functions[endpoint] = decorated_once(view)

"""One settings object, read from environment variables with documented defaults.

Nothing is read at import time: call :meth:`Settings.from_env` (the service's
``wsgi.py`` does) or build :class:`Settings` directly (tests do).

=========================  ===========================================  ==========================
variable                   meaning                                      default
=========================  ===========================================  ==========================
``COE_MODEL_STORE``        directory holding the training runs          ``<project>/model-store``
``COE_TRAINING_ARGS``      JSON file of default training arguments      ``<project>/config/args.json``
``COE_RUN_ID``             run to serve                                 the newest run in the store
``COE_MAX_BODY_BYTES``     largest request body accepted                ``1048576`` (1 MiB)
``COE_VALIDATE_RESPONSES`` check every response against the spec        ``false`` (tests turn it on)
=========================  ===========================================  ==========================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE | _FALSE - {''})}, not {value!r}")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be positive, not {number}")
    return number


@dataclass(frozen=True)
class Settings:
    model_store: Path = PROJECT_ROOT / "model-store"
    training_args: Path = PROJECT_ROOT / "config" / "args.json"
    run_id: str | None = None
    max_body_bytes: int = 1 << 20
    validate_responses: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()
        return cls(
            model_store=Path(environ.get("COE_MODEL_STORE") or defaults.model_store),
            training_args=Path(environ.get("COE_TRAINING_ARGS") or defaults.training_args),
            run_id=environ.get("COE_RUN_ID") or None,
            max_body_bytes=_positive_int(environ, "COE_MAX_BODY_BYTES", defaults.max_body_bytes),
            validate_responses=_flag(environ, "COE_VALIDATE_RESPONSES", defaults.validate_responses),
        )

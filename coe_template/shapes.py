"""Shapes the registry records and the API serves, declared once for the package.

openapi/spec.yaml states the same rules for HTTP (the ``model-name`` parameter's
pattern, the ``Performance`` schema); tests/coe_template/test_shapes.py holds the
two equal, so a value the registry accepts is one the API can address and serve.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fastjsonschema

from coe_template.errors import InvalidInput

if TYPE_CHECKING:
    from coe_template.batch.jobs import JobInfo

#: A model's name: what ``/models/{model-name}`` can address (the spec's pattern, anchored as there).
MODEL_NAME_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
#: The longest model description kept: a sentence or a paragraph, never a document.
MAX_DESCRIPTION = 2000

#: One set of figures on the test split (the spec's ``Metrics``).
METRICS: dict[str, Any] = {
    "type": "object",
    "required": ["precision", "recall", "f1", "num_samples"],
    "properties": {
        "precision": {"type": "number", "minimum": 0, "maximum": 1},
        "recall": {"type": "number", "minimum": 0, "maximum": 1},
        "f1": {"type": "number", "minimum": 0, "maximum": 1},
        "num_samples": {"type": "integer", "minimum": 0},
    },
}
#: A version's performance (the spec's ``Performance``, its ``Metrics`` references written out).
PERFORMANCE: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "overall": METRICS,
        "class": {"type": "object", "additionalProperties": METRICS},
        "slices": {"type": "object", "additionalProperties": METRICS},
    },
}


class InvalidName(InvalidInput):
    """A model name the API could not address."""


def check_model_name(name: Any) -> str:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise InvalidName(
            f"{shown} is not a model name: lower-case letters, digits and hyphens, "
            "starting with a letter or digit, at most 63 characters"
        )
    return name


def check_description(description: Any) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"a model's description must be text of at most {MAX_DESCRIPTION} characters")
    return description


@functools.cache
def _performance_check() -> Callable[[Any], Any]:
    # Draft 4, as OpenAPI 3.0: there 1.0 is not an integer.
    return fastjsonschema.compile({**PERFORMANCE, "$schema": "http://json-schema.org/draft-04/schema#"})


def performance_problem(performance: Any) -> str | None:
    """Why ``performance`` is not what the API serves as a version's performance; None when it is."""
    try:
        _performance_check()(performance)
    except fastjsonschema.JsonSchemaException as exc:
        return str(exc)  # the message (JsonSchemaValueException's .message)
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def strict_json(data: bytes | str) -> Any:
    """JSON as RFC 8259 has it: ``NaN`` and ``Infinity`` (which :func:`json.loads` takes) are refused."""
    return json.loads(data, parse_constant=_no_constant)


#: Digits of a batch job's ``progress`` served: enough to see a job of a million items move, few to read.
PROGRESS_DIGITS = 4


def utc_time(moment: datetime | None) -> str | None:
    """A moment as the API serves every time: ISO 8601 in UTC, to the millisecond (``…T01:38:35.538+00:00``)."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")


def batch_job(job: JobInfo) -> dict[str, Any]:
    """A batch job as ``GET /batch-predictions/{id}`` serves it (the spec's ``BatchJob``) and
    ``coe-template batch-predict`` prints it."""
    return {
        "id": job.id,
        "status": job.status,
        "model": {"name": job.model_name, "version": job.model_version},
        "items": {"total": job.total_items, "done": job.done_items},
        "progress": round(job.progress, PROGRESS_DIGITS),
        "created_at": utc_time(job.created_at),
        "started_at": utc_time(job.started_at),
        "finished_at": utc_time(job.finished_at),
        "expires_at": utc_time(job.expires_at),
        "error": job.error,
    }

"""Per-app objects the handlers reach: settings, the registry, the model server."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from coe_template.args import TrainingArgs
from coe_template.batch.jobs import BatchJobs
from coe_template.registry import Registry
from coe_template.registry.training import TrainingJobs
from coe_template.serving import ModelServer, Served
from config.settings import Settings

EXTENSION = "coe_template"


@dataclass(frozen=True)
class Services:
    settings: Settings
    registry: Registry
    server: ModelServer
    batch: BatchJobs
    training: TrainingJobs
    #: ``COE_TRAINING_ARGS``, read once at start: what a training request leaves out.
    training_args: TrainingArgs


def services() -> Services:
    return current_app.extensions[EXTENSION]


def serving() -> Served:
    """The ``production`` version this process serves (read once per request)."""
    return services().server.current

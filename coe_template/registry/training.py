"""Training a new version outside the serving process.

The API only records the version and starts a separate process, so serving
workers never spend a cycle fitting; the process marks the version ``ready`` or
``failed``, and a process that dies silently is reaped as ``failed``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from coe_template.args import TrainingArgs, parse_args
from coe_template.data import load_dataset
from coe_template.errors import CoeError
from coe_template.registry.registry import Registry
from coe_template.train import train


def start_training(registry: Registry, database_url: str, name: str, args: TrainingArgs,
                   data: Path, max_training: int | None = None) -> dict[str, Any]:
    """Record a version and start its trainer; :class:`Busy` if ``max_training`` are running already."""
    version = registry.create_version(name, args, max_training=max_training)
    number = version["version"]
    command = [sys.executable, "-m", "coe_template.cli", "models", "train-version", name, str(number),
               "--data", str(data)]
    env = {**os.environ, "COE_MODEL_STORE": str(registry.store), "DATABASE_URL": database_url,
           "COE_ARTIFACT_STORE": registry.artifacts.kind}
    try:
        process = subprocess.Popen(command, env=env, start_new_session=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except OSError as exc:
        registry.fail_version(name, number, f"could not start training: {exc}")
        raise
    registry.set_trainer(name, number, process.pid)
    threading.Thread(target=process.wait, name=f"trainer-{process.pid}", daemon=True).start()
    return registry.get_version(name, number)


def run_training(registry: Registry, name: str, number: int, data: Path) -> dict[str, Any]:
    """Train a recorded version; any error leaves it ``failed`` with the message."""
    version = registry.get_version(name, number)
    try:
        trained = train(load_dataset(data), parse_args(version["args"]))
        return registry.complete_version(name, number, trained)
    except Exception as exc:
        registry.fail_version(name, number, _why(exc, Path(data)))
        raise


def _why(exc: Exception, data: Path) -> str:
    """Why training failed, as the version records it: every client can read that, so no server path.

    The package's own errors are written for people; the data file they name is called by its
    name alone. Any other error can hold anything (a path, a query): it goes to the log, raised.
    """
    if isinstance(exc, CoeError):
        return f"{type(exc).__name__}: {exc}".replace(str(data), f"the training data ({data.name})")
    return f"{type(exc).__name__}: training failed unexpectedly; the traceback is in the server's log"

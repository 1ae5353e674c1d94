"""gunicorn settings: ``gunicorn -c config/gunicorn.py wsgi:app``.

Connexion's FlaskApp is an ASGI app, so workers are Uvicorn workers; each runs
Flask in Connexion's own pool of threads, so no gunicorn threads on top.

============================  ======================================  =====================
variable                      meaning                                 default
============================  ======================================  =====================
``COE_BIND``                  address to listen on                    ``0.0.0.0:8000``
``WEB_CONCURRENCY``           number of worker processes              one per core
``COE_GRACEFUL``              seconds in-flight requests get on stop  ``30``
``PROMETHEUS_MULTIPROC_DIR``  where the workers' metrics files live   a temp dir of its own
============================  ======================================  =====================

Metrics: every worker writes its counts to files in ``PROMETHEUS_MULTIPROC_DIR``
and any worker's ``/metrics`` sums them. The variable must be set before the app
(and so ``prometheus_client``) is imported, which is why this file sets it: to a
directory of its own for this gunicorn, unless the environment names one; it is
emptied at start (stale counts would otherwise be added in), and a dead worker's
live gauges are removed (``child_exit``).

Logs: :class:`config.logging.GunicornLogger` writes gunicorn's and uvicorn's lines
through the service's one handler (``COE_LOG_FORMAT``); the access log is the
service's own, so gunicorn's ``accesslog`` stays unset.
"""

import gc
import os
import shutil
import tempfile
from pathlib import Path

from config.logging import GunicornLogger


def _metrics_dir() -> str:
    """The multiprocess metrics directory, prepared once per gunicorn master (a reload keeps it)."""
    if os.environ.get("COE_METRICS_DIR_OWNER") == str(os.getpid()):
        return os.environ["PROMETHEUS_MULTIPROC_DIR"]
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="coe-metrics-"))
        os.environ["COE_METRICS_DIR_CREATED"] = str(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    os.environ["COE_METRICS_DIR_OWNER"] = str(os.getpid())
    return str(path)


metrics_dir = _metrics_dir()

bind = os.environ.get("COE_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "uvicorn_worker.UvicornWorker"
# Load the model before forking so workers share its memory pages.
preload_app = True
graceful_timeout = int(os.environ.get("COE_GRACEFUL", "30"))
timeout = 60
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 100_000
max_requests_jitter = 10_000
logger_class = GunicornLogger


def pre_fork(server, worker) -> None:
    """Freeze what the master loaded (the model, the libraries) before each fork.

    Those objects live as long as the process: the garbage collector need not scan
    them. Unfrozen, every full collection walks them all (a 100 ms pause in a
    worker's p99) and writes to their headers, copying the shared pages into each
    worker (copy-on-write). Frozen, workers keep sharing them.
    """
    gc.freeze()


def child_exit(server, worker) -> None:
    """A worker is gone (stopped, recycled or killed): drop its live gauges, keep its counters."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, metrics_dir)


def on_exit(server) -> None:
    """Remove the metrics directory this gunicorn made for itself (never one it was given)."""
    if os.environ.get("COE_METRICS_DIR_CREATED") == metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)

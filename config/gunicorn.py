"""gunicorn settings: ``gunicorn -c config/gunicorn.py wsgi:app``.

Connexion's FlaskApp is an ASGI app, so workers are Uvicorn workers; each runs
Flask in Connexion's own pool of threads, so no gunicorn threads on top.

Its variables (``COE_BIND``, ``WEB_CONCURRENCY``, ``COE_GRACEFUL``, ``PROMETHEUS_MULTIPROC_DIR``,
``COE_CONTROL_SOCKET``) are declared in :class:`config.settings.ServerSettings`.

Metrics: every worker writes its counts to files in ``PROMETHEUS_MULTIPROC_DIR``
and any worker's ``/metrics`` sums them. The variable must be set before the app
(and so ``prometheus_client``) is imported, which is why this file sets it: to a
directory of its own for this gunicorn, unless the environment names one; it is
emptied at start (stale counts would otherwise be added in), and a dead worker's
live gauges are removed (``child_exit``).

Logs: :class:`GunicornLogger` (below) writes gunicorn's and uvicorn's lines
through the service's one handler (``COE_LOG_FORMAT``); the access log is the
service's own, so gunicorn's ``accesslog`` stays unset.

Which gunicorn settings apply under the Uvicorn worker (read in gunicorn 27,
uvicorn 0.54 and uvicorn-worker 0.4's source; the uvicorn options themselves are
set in :mod:`handlers.server`):

===================================  =======  ====================================================
setting                              applies  how
===================================  =======  ====================================================
``bind`` ``backlog`` ``reuse_port``  yes      the master opens the sockets; workers serve them
``workers`` ``preload_app``          yes      the master forks; ``pre_fork`` freezes shared memory
``graceful_timeout``                 yes      the master SIGKILLs workers still alive after it;
                                              ``handlers/server.py`` gives uvicorn the in-flight
                                              share of it (uvicorn alone would wait forever)
``timeout``                          partly   kills a worker whose event loop stops beating; a
                                              slow request (Flask runs in threads) is never cut
``keepalive``                        yes      passed as uvicorn's ``timeout_keep_alive``
``max_requests`` + ``_jitter``       yes      jitter drawn per worker by gunicorn, passed as
                                              uvicorn's ``limit_max_requests``
``forwarded_allow_ips``              yes      passed to uvicorn's proxy-headers middleware
SSL (``certfile``, ``keyfile``...)   yes      passed to uvicorn
``accesslog`` ``errorlog``           yes      uvicorn's loggers take gunicorn's handlers and levels
``loglevel`` ``logconfig_dict``               (the access log is ours: ``accesslog`` stays unset)
``access_log_format``                no       uvicorn writes its own access line (turned off)
hooks ``on_starting``                yes      run by the master, or around a worker's life
``when_ready`` ``pre_fork``
``post_fork`` ``post_worker_init``
``child_exit`` ``worker_exit``
hooks ``pre_request``                no       only gunicorn's own workers call them; the
``post_request`` ``worker_int``               uvicorn worker resets SIGINT/SIGABRT to defaults
``worker_abort``
``control_socket*``                  yes      the master's (see below)
``worker_connections``               no       ``COE_MAX_CONNECTIONS`` (handlers/server.py) instead
``threads``                          no       Connexion's fixed pool of 10 threads per worker
``limit_request_line``               no       gunicorn's HTTP parser only; uvicorn's httptools
``limit_request_fields``                      parser has no bound: ``handlers/server.py`` adds
``limit_request_field_size``                  ``COE_MAX_HEADER_BYTES``, ``COE_HEADER_TIMEOUT``
``secure_scheme_headers``            no       uvicorn reads ``X-Forwarded-Proto`` itself
``proxy_protocol`` ``http2_*``       no       gunicorn's own HTTP and ASGI stack only
``asgi_*`` ``http_parser``
``header_map`` ``permit_*``
===================================  =======  ====================================================
"""

import gc
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn import glogging
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.workers.base import Worker

from config.logging import configure as configure_logging


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


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, writing through our handler (uvicorn's workers copy its handlers)."""

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        from config.settings import Settings  # the settings module reads nothing at import either

        settings = Settings.from_env()
        handler = configure_logging(
            settings.log_format, settings.log_level, settings.admin_keys | settings.read_keys
        )
        self.error_log.handlers = [handler]
        self.error_log.propagate = False
        self.access_log.handlers = []
        self.access_log.disabled = True


# After the metrics directory is set: handlers.server imports the app's modules.
from handlers.server import APP_SHUTDOWN_SECONDS  # noqa: E402

# isort: split
# The server's variables are declared beside the app's (config.settings imports the domain, so after it too).
from config.settings import ServerSettings  # noqa: E402

_server = ServerSettings.from_env()
bind = _server.bind
workers = _server.workers
# uvicorn_worker.UvicornWorker, with server_header off and the limits of handlers/server.py.
worker_class = "handlers.server.ServingProcess"
# Load the model before forking so workers share its memory pages.
preload_app = True
# In-flight requests get COE_GRACEFUL seconds; the app's own shutdown a few more.
graceful_timeout = _server.graceful + APP_SHUTDOWN_SECONDS
timeout = 60
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 100_000
max_requests_jitter = 10_000
logger_class = GunicornLogger

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default: every
# instance on a host would take (and on exit delete) the same one. Off unless asked
# for, then at a path of its own.
_control_socket = _server.control_socket
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket


def pre_fork(server: Arbiter, worker: Worker) -> None:
    """Freeze what the master loaded (the model, the libraries) before each fork.

    Those objects live as long as the process: the garbage collector need not scan
    them. Unfrozen, every full collection walks them all (a 100 ms pause in a
    worker's p99) and writes to their headers, copying the shared pages into each
    worker (copy-on-write). Frozen, workers keep sharing them.
    """
    gc.freeze()


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker is gone (stopped, recycled or killed): drop its live gauges, fold its counts into the archive."""
    from handlers.multiprocess import worker_exited

    # types-gunicorn says str (its placeholder before the fork); the master sets the child's int pid.
    worker_exited(worker.pid, metrics_dir)  # type: ignore[arg-type]


def on_exit(server: Arbiter) -> None:
    """Remove the metrics directory this gunicorn made for itself (never one it was given)."""
    if os.environ.get("COE_METRICS_DIR_CREATED") == metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)

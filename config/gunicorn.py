"""gunicorn settings: ``gunicorn -c config/gunicorn.py wsgi:app``.

Connexion's FlaskApp is an ASGI app, so workers are Uvicorn workers; each runs
Flask in Connexion's own pool of threads, so no gunicorn threads on top.

=====================  ======================================  ==================
variable               meaning                                 default
=====================  ======================================  ==================
``COE_BIND``           address to listen on                    ``0.0.0.0:8000``
``WEB_CONCURRENCY``    number of worker processes              one per core
``COE_GRACEFUL``       seconds in-flight requests get on stop  ``30``
=====================  ======================================  ==================
"""

import gc
import os

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
accesslog = "-"


def pre_fork(server, worker) -> None:
    """Freeze what the master loaded (the model, the libraries) before each fork.

    Those objects live as long as the process: the garbage collector need not scan
    them. Unfrozen, every full collection walks them all (a 100 ms pause in a
    worker's p99) and writes to their headers, copying the shared pages into each
    worker (copy-on-write). Frozen, workers keep sharing them.
    """
    gc.freeze()

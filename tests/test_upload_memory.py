"""A large CSV upload against the real server: its memory bounded by the body, not by its rows.

Before the upload streamed, a 50 MiB body of 4.9 million tiny rows took a worker from
271 MB to 2,471 MB: every row became Python objects (~50x the body) before one was stored.

The test sends 16 MiB (~1.8 million rows), a third of the default upload limit: enough
that the per-row objects, had they come back, would dwarf the fixed costs of a request
(the bound is 3x the body, 48 MB: the old code took ~700 MB for this body), and quick
enough for the suite (~10 s). The same bounds hold for 50 MiB: ``bench/upload_memory.py``
measures that (and the predictions' latency meanwhile; tests assert no timings).
"""

from __future__ import annotations

import pytest

from bench.upload_memory import measure_upload, tiny_rows, worker_pids
from tests.conftest import seeded_registry
from tests.servers import gunicorn

MIB = 1 << 20
BODY = 16 * MIB


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory: pytest.TempPathFactory):
    """One worker (the upload and the predictions share it); batch work elsewhere, so only the upload counts.

    A registry of its own: the job it queues is never worked, and no other test sees it.
    """
    store = tmp_path_factory.mktemp("upload-memory")
    url = f"sqlite:///{store}/registry.db"
    seeded_registry(url, store, trained_model).engine.dispose()
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": url,
        "COE_BATCH_IN_SERVER": "false",
        "COE_ACCESS_LOG": "false",
    }
    with gunicorn(env, store / "server.log", workers=1) as (base, process):
        yield base, process


def test_a_large_upload_of_tiny_rows_takes_memory_bounded_by_its_size(server):
    base, process = server
    csv, rows = tiny_rows(BODY)
    (pid,) = worker_pids(process.pid)
    figures = measure_upload(base, pid, csv)
    assert figures["status"] == 202, figures["answer"]
    assert figures["answer"]["data"]["job"]["items"] == {"total": rows, "done": 0}
    assert figures["failures"] == 0 and figures["predictions"] > 0  # the worker kept answering
    grew, kept = figures["peak"] - figures["idle"], figures["after"] - figures["idle"]
    assert grew <= 3 * len(csv), f"peak {grew / MIB:.0f} MiB above idle for a {len(csv) / MIB:.0f} MiB body"
    assert kept <= 50e6, f"{kept / 1e6:.0f} MB more than at idle after the upload"

"""The short form of ``make soak`` (bench/soak.py): mixed traffic, a promotion and a rollback, no surprise."""

from __future__ import annotations

from bench.soak import ADMIN_KEY, soak
from tests.conftest import seeded_registry
from tests.servers import gunicorn

SECONDS = 12
#: What a worker may grow by in a short soak after its warm-up (allocator and cache churn).
RSS_GROWTH_BOUND = 32 * 2**20


def test_short_soak(tmp_path, trained_model):
    store = tmp_path / "store"
    url = f"sqlite:///{store / 'registry.db'}"
    seeded_registry(url, store, trained_model, versions=2).engine.dispose()
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_REFRESH_SECONDS": "0.5",
    }
    with gunicorn(env, tmp_path / "server.log", workers=2) as (base, master):
        report = soak(base, master.pid, SECONDS, connections=4)
    print("\n" + report.text())
    assert not report.unexpected
    assert {
        "predict-1",
        "predict-64",
        "read",
        "batch-create",
        "batch-poll",
        "batch-results",
        "promote",
    } <= set(report.latencies)
    assert report.versions_served[1] and report.versions_served[2], "the promotion and rollback were served"
    assert report.batch_items_done > 0
    growth = report.rss_growth()
    assert len(growth) == 2, "no worker was replaced"
    assert max(growth.values()) < RSS_GROWTH_BOUND, growth

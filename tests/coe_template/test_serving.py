"""ModelServer: serves what ``production`` points at, swaps only to a version that loads intact."""

from __future__ import annotations

import threading

import pytest

from coe_template.artifacts.runs import MODEL_FILE, ArtifactError
from coe_template.model.predict import predict
from coe_template.registry import PRODUCTION, AliasNotFound, ModelNotFound, VersionNotFound
from coe_template.serving import ModelNotLoaded, ModelServer
from tests.coe_template.registry.test_registry import (  # noqa: F401  (fixtures)
    NAME,
    other_model,
    registry,
    run_path,
    small_csv,
    small_dataset,
    small_model,
    store,
    tamper,
)
from tests.waiting import wait_until

PROBES = ["Sentiment of text with a transformer", "Detection of objects in camera video"]


@pytest.fixture
def versions(registry, small_model, other_model):
    """Two ready versions of NAME, production on 1."""
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    registry.register(NAME, other_model)
    registry.set_alias(NAME, PRODUCTION, 1)
    return registry


@pytest.fixture
def server(versions):
    server = ModelServer(versions, NAME, refresh_seconds=0.05)
    yield server
    server.stop()


def test_nothing_is_served_before_the_first_refresh(server):
    with pytest.raises(ModelNotLoaded, match="no production version of 'project-tagger' is loaded"):
        server.current  # noqa: B018 - reading the property is what raises


def test_refresh_loads_production_then_reports_no_change(server, versions):
    assert server.refresh() is True
    served = server.current
    assert (served.name, served.version) == (NAME, 1)
    assert served.artifacts.run_id == versions.get_version(NAME, 1).run_id
    assert server.refresh() is False
    assert server.refresh() is False
    assert server.current is served  # the very same loaded model keeps serving


def test_refresh_swaps_to_the_promoted_version(server, versions, small_model, other_model):
    server.refresh()
    before = predict(PROBES, server.current.artifacts)
    versions.set_alias(NAME, PRODUCTION, 2)
    assert server.refresh() is True
    assert server.current.version == 2
    assert server.current.artifacts.run_id == versions.get_version(NAME, 2).run_id
    after = predict(PROBES, server.current.artifacts)
    assert [p["probabilities"] for p in after] != [p["probabilities"] for p in before]


def test_rolling_back_swaps_back(server, versions):
    server.refresh()
    versions.set_alias(NAME, PRODUCTION, 2)
    server.refresh()
    versions.set_alias(NAME, PRODUCTION, 1)
    assert server.refresh() is True
    assert server.current.version == 1


def test_a_version_tampered_after_promotion_is_refused_and_the_old_one_keeps_serving(server, versions):
    server.refresh()
    old = server.current
    versions.set_alias(NAME, PRODUCTION, 2)  # intact when promoted...
    tamper(run_path(versions, 2) / MODEL_FILE)  # ...changed on disk before this worker loads it
    with pytest.raises(ArtifactError, match=MODEL_FILE):
        server.refresh()
    assert server.current is old
    assert server.current.version == 1
    assert predict(PROBES, server.current.artifacts)  # still answering
    with pytest.raises(ArtifactError):
        server.refresh()  # and it keeps refusing, rather than giving in on a second try
    assert server.current.version == 1


def test_refresh_without_a_production_alias_fails_clearly(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    server = ModelServer(registry, NAME)
    with pytest.raises(AliasNotFound, match="production"):
        server.refresh()
    with pytest.raises(ModelNotFound):
        ModelServer(registry, "nope").refresh()


def test_pinned_returns_the_requested_version_and_caches_it(server, versions):
    first = server.pinned(NAME, 2)
    assert (first.name, first.version) == (NAME, 2)
    assert first.artifacts.run_id == versions.get_version(NAME, 2).run_id
    assert server.pinned(NAME, 2) is first  # not loaded again
    # Cached: a later change on disk does not affect the already verified, loaded copy.
    tamper(run_path(versions, 2) / MODEL_FILE)
    assert server.pinned(NAME, 2) is first


def test_pinned_does_not_change_what_production_serves(server):
    server.refresh()
    server.pinned(NAME, 2)
    assert server.current.version == 1
    assert server.refresh() is False


def test_pinned_refuses_a_tampered_or_unknown_version(server, versions):
    tamper(run_path(versions, 2) / MODEL_FILE)
    with pytest.raises(ArtifactError):
        server.pinned(NAME, 2)
    with pytest.raises(VersionNotFound):
        server.pinned(NAME, 3)


def test_the_pinned_cache_is_bounded(versions, small_model):
    versions.register(NAME, small_model)  # version 3
    server = ModelServer(versions, NAME, cache_size=2)
    one = server.pinned(NAME, 1)
    server.pinned(NAME, 2)
    server.pinned(NAME, 3)  # evicts version 1, the least recently used
    assert server.pinned(NAME, 1) is not one
    assert server.pinned(NAME, 1).version == 1


def served_version(server: ModelServer) -> int | None:
    try:
        return server.current.version
    except ModelNotLoaded:
        return None


def test_the_poller_picks_up_a_promotion(server, versions):
    server.refresh()
    server.start()
    versions.set_alias(NAME, PRODUCTION, 2)
    wait_until(lambda: server.current.version == 2, 10, "server.current.version == 2")
    versions.set_alias(NAME, PRODUCTION, 1)
    wait_until(lambda: server.current.version == 1, 10, "server.current.version == 1")


def test_the_poller_loads_production_when_nothing_is_served_yet(server):
    server.start()
    wait_until(lambda: served_version(server) == 1, 10, "served_version(server) == 1")


def test_the_poller_survives_a_tampered_version_and_keeps_serving(server, versions, small_model, caplog):
    server.refresh()
    versions.set_alias(NAME, PRODUCTION, 2)
    tamper(run_path(versions, 2) / MODEL_FILE)  # before polling starts: it must never see v2 intact
    server.start()
    wait_until(
        lambda: "keeping project-tagger version 1" in caplog.text,
        10,
        '"keeping project-tagger version 1" in caplog.text',
    )
    assert server.current.version == 1
    # The poller is still alive: promoting an intact version is picked up.
    versions.register(NAME, small_model)  # version 3
    versions.set_alias(NAME, PRODUCTION, 3)
    wait_until(lambda: server.current.version == 3, 10, "server.current.version == 3")


def test_stop_ends_polling(server, versions):
    server.refresh()
    before = set(threading.enumerate())
    server.start()
    started = set(threading.enumerate()) - before
    assert started  # the poller (and nothing else on SQLite)
    server.stop()
    assert not any(thread.is_alive() for thread in started)  # stop() waited for it: nothing left to poll
    versions.set_alias(NAME, PRODUCTION, 2)
    server.wake()  # as a promotion's notification would
    assert server.current.version == 1

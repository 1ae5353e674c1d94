"""How big a run is, and how long a host takes to get a version's files: from a directory, from the database.

    python bench/artifact_fetch.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--rounds 10]

Trains the default model once, stores it with each artifact store, then times, best of
``--rounds``: fetching and verifying every file with no local cache (a fresh replica),
the same from the local cache (a restart), and a whole ``Registry.load`` (fetch, verify,
check the model file and build it, compile) from an empty cache.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coe_template.artifacts.runs import MODEL_FILE, RECORD_FILE, read_verified  # noqa: E402
from coe_template.artifacts.stores import DATABASE, DIRECTORY  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, load_dataset  # noqa: E402
from coe_template.model.train import TrainedModel, train  # noqa: E402
from coe_template.registry import Registry  # noqa: E402
from config.settings import PROJECT_ROOT  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402

MODEL = "project-tagger"


def best(rounds: int, prepare: Callable[[], None], work: Callable[[], object]) -> float:
    """Milliseconds of the fastest of ``rounds`` runs of ``work``, each after ``prepare``."""
    times = []
    for _ in range(rounds):
        prepare()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def measure(label: str, url: str, kind: str, store: Path, trained: TrainedModel, rounds: int) -> None:
    registry = Registry.open(url, store, upgrade=True, artifacts=kind)
    try:
        registry.ensure_model(MODEL)
        version = registry.register(MODEL, trained)
        run_id, digests = version.run_id, version.artifacts
        assert run_id is not None and digests is not None  # a registered version is ready
        sizes = {name: len(registry.artifacts.get(run_id, name) or b"") for name in (*digests, RECORD_FILE)}
        cache = store / "cache"

        def empty_cache() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        cold = best(rounds, empty_cache, lambda: read_verified(run_id, registry.artifacts, digests))
        warm = best(rounds, lambda: None, lambda: read_verified(run_id, registry.artifacts, digests))
        load = best(rounds, empty_cache, lambda: registry.load(MODEL, version.version))
        print(
            f"{label:<22} {sum(sizes.values()) / 1e6:6.2f} MB ({sizes[MODEL_FILE] / 1e6:.2f} MB model)  "
            f"fetch+verify {cold:6.1f} ms  from cache {warm:6.1f} ms  whole load {load:6.1f} ms"
        )
    finally:
        registry.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (a schema of its own is made and dropped)")
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    trained = train(load_dataset(bundled_dataset_path()), load_args(PROJECT_ROOT / "config" / "args.json"))
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        sqlite = f"sqlite:///{root / 'registry.db'}"
        measure("directory", sqlite, DIRECTORY, root / "directory", trained, options.rounds)
        measure(
            "SQLite blobs",
            f"sqlite:///{root / 'blobs.db'}",
            DATABASE,
            root / "sqlite",
            trained,
            options.rounds,
        )
        if options.postgres:
            url = stack.enter_context(postgres_schema(options.postgres, prefix="bench"))
            measure("PostgreSQL blobs", url, DATABASE, root / "postgres", trained, options.rounds)


if __name__ == "__main__":
    main()

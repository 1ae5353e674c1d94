"""A training child's wall time with one BLAS/OpenMP thread (as runners start it) and with the libraries' default.

    python bench/training_threads.py [--rounds 3]

Runs ``python -m coe_template.trainer`` as :class:`coe_template.trainer.TrainingRunner` does, with
the default arguments, on ../shared/data/labeled_projects.csv when it is there (else the bundled
data), alternating the two environments; prints each one's best and median seconds and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coe_template.model.data import bundled_dataset_path  # noqa: E402
from coe_template.trainer import ONE_THREAD  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402


def child_seconds(env: dict[str, str], data: Path) -> float:
    request = json.dumps({"args": {}, "data": str(data)}).encode() + b"\n"
    started = time.perf_counter()
    # stdin stays open until the answer is read: the child exits when it closes (an orphan's rule).
    child = subprocess.Popen(
        [sys.executable, "-m", "coe_template.trainer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(request)
    child.stdin.flush()
    answer = child.stdout.read()
    child.stdin.close()
    child.wait()
    if not answer:
        raise SystemExit(f"the training child gave no answer (exit status {child.returncode})")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    data = SHARED_DATA if SHARED_DATA.exists() else bundled_dataset_path()
    default = {k: v for k, v in os.environ.items() if k not in ONE_THREAD}
    times: dict[str, list[float]] = {"one thread": [], "library default": []}
    for _ in range(options.rounds):
        times["one thread"].append(child_seconds({**default, **ONE_THREAD}, data))
        times["library default"].append(child_seconds(default, data))
    print(
        f"training child on {data.name}, {os.cpu_count()} cores, {options.rounds} rounds (s, start to answer)"
    )
    for name, seconds in times.items():
        print(f"{name:<16} best {min(seconds):7.2f}  median {statistics.median(seconds):7.2f}")
    print(
        f"library default / one thread (medians): {statistics.median(times['library default']) / statistics.median(times['one thread']):.2f}x"
    )


if __name__ == "__main__":
    main()

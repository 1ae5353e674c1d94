"""Measure the README's quality figures with the real CLI, in throw-away model stores.

    python bench/quality.py [--data ../shared/data/labeled_projects.csv]

1. Train on the bundled dataset, evaluate on the real public dataset (never trained on).
2. Train on the real dataset; report the held-out test F1 of that run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "labeled_projects.csv"


def run(store: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "coe_template.cli", "--store", store, *args],
        check=True, capture_output=True, text=True, cwd=PROJECT_ROOT,
    ).stdout


def cli(store: str, *args: str) -> dict:
    out = run(store, *args)
    return json.loads(out[out.index("{"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    data = str(parser.parse_args().data)
    with tempfile.TemporaryDirectory() as bundled, tempfile.TemporaryDirectory() as real:
        run(bundled, "db", "upgrade")
        run(real, "db", "upgrade")
        cli(bundled, "train")
        transfer = cli(bundled, "evaluate", "--data", data)["performance"]
        held_out = cli(real, "train", "--data", data)["test"]
    print(f"{'measure':<58} {'weighted F1':>11} {'samples':>8}")
    print(f"{'bundled-data model, evaluated on ' + Path(data).name:<58} "
          f"{transfer['overall']['f1']:>11.3f} {transfer['overall']['num_samples']:>8}")
    for tag, metrics in transfer["class"].items():
        print(f"{'  class ' + tag:<58} {metrics['f1']:>11.3f} {metrics['num_samples']:>8}")
    print(f"{'model trained on ' + Path(data).name + ', held-out test split':<58} "
          f"{held_out['f1']:>11.3f} {held_out['num_samples']:>8}")


if __name__ == "__main__":
    main()

"""What storing the pipeline as ``model.skops`` costs against the pickle it replaced: size and time, in-process.

    python bench/model_file.py [--rounds 10]

Trains the default model once, then times, over ``--rounds`` runs each (best and median): writing
and reading it as a joblib pickle (what ``model.joblib`` was, never read by the service any more),
as the project's ``model.skops`` (``coe_template.model.model_file``: every type checked, then built, then its
parameters checked against its arguments), and, for scale, as a plain ``skops.io`` dump of the
pipeline (its vocabulary as skops's node-per-entry dict).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import skops.io as sio  # noqa: E402

from coe_template.model import model_file  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import bundled_dataset_path, clean_text, load_dataset  # noqa: E402
from coe_template.model.train import train  # noqa: E402
from config.settings import PROJECT_ROOT  # noqa: E402


def timed(rounds: int, work: Callable[[], object]) -> str:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return f"best {min(times):7.1f} ms  median {statistics.median(times):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    trained = train(load_dataset(bundled_dataset_path()), load_args(PROJECT_ROOT / "config" / "args.json"))
    pipeline, args = trained.pipeline, trained.args.to_dict()

    def joblib_dumps() -> bytes:
        buffer = io.BytesIO()
        joblib.dump(pipeline, buffer)
        return buffer.getvalue()

    pickled, stored = joblib_dumps(), model_file.dumps(pipeline)
    plain = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    texts = [clean_text(t) for t in ["Object detection on drone video", "A transformer for legal text"]]
    loaded = model_file.loads(stored, args, "bench")
    assert np.array_equal(loaded.predict_proba(texts), pipeline.predict_proba(texts))
    vocabulary = len(pipeline[0].vocabulary_)
    print(f"default model: {vocabulary} terms, {len(trained.labels)} tags; {rounds} rounds each")
    print(f"joblib pickle (model.joblib)   {len(pickled) / 1e6:6.2f} MB")
    print(f"model.skops (model_file)       {len(stored) / 1e6:6.2f} MB")
    print(f"skops.io of the pipeline as is {len(plain) / 1e6:6.2f} MB")
    print(f"write joblib                   {timed(rounds, joblib_dumps)}")
    print(f"write model.skops              {timed(rounds, lambda: model_file.dumps(pipeline))}")
    print(f"read joblib (unchecked pickle) {timed(rounds, lambda: joblib.load(io.BytesIO(pickled)))}")
    print(f"read model.skops, all checks   {timed(rounds, lambda: model_file.loads(stored, args, 'bench'))}")
    print(f"  of which the type listing    {timed(rounds, lambda: model_file.types_in(stored, 'bench'))}")
    slow = max(1, rounds // 5)
    print(f"read skops.io as is ({slow} rounds) {timed(slow, lambda: sio.loads(plain, trusted=[]))}")


if __name__ == "__main__":
    main()

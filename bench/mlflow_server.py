"""MLflow's own model server on the same fitted pipeline, for bench/serving.py's comparison.

MLflow is not a dependency: it lives in a virtual environment of its own (``make
.venv-mlflow``), with the same scikit-learn as ours, and is reached through its Python.
The pipeline is handed over as a joblib file this benchmark wrote itself a moment before
(our own object, never a client's), saved as an MLflow model answering ``predict_proba``
(what this service and the seed app answer), and served by ``mlflow models serve`` with
the same number of workers.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import joblib
from sklearn.pipeline import Pipeline

from tests.servers import free_port

SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], pyfunc_predict_fn="predict_proba")
"""


def version(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@contextmanager
def mlflow_server(python: Path, pipeline: Pipeline, workers: int, work: Path) -> Iterator[str]:
    """Yield the URL of ``/invocations`` once the server answers a prediction; stop it afterwards."""
    model = work / "mlflow-model"
    if not model.exists():
        joblib.dump(pipeline, work / "pipeline.joblib")
        subprocess.run([str(python), "-c", SAVE, str(work / "pipeline.joblib"), str(model)], check=True)
    port = free_port()
    with (work / "mlflow.log").open("a") as log:
        process = subprocess.Popen(
            [str(python), "-m", "mlflow", "models", "serve", "-m", str(model), "-p", str(port)]
            + ["-h", "127.0.0.1", "--env-manager", "local", "-w", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
            # It starts ``uvicorn`` by name: its own environment's.
            env={**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.post(url, json={"inputs": ["warm up"]}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not answer: see {work / 'mlflow.log'}")
            time.sleep(0.5)
        for _ in range(50):
            httpx.post(url, json={"inputs": ["warm up"]}, timeout=5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""THE COMPARISON, not the service: the seed's FastAPI app, serving the same model.

Written the way the seed template serves (FastAPI, pydantic payloads, the seed's
response envelope built by a decorator, scikit-learn's ``pipeline.predict_proba``),
so ``bench/serving.py`` can measure our server against it in the same run.

    BENCH_MODEL_STORE=... BENCH_RUN_ID=... gunicorn -k uvicorn_worker.UvicornWorker bench.seed_fastapi_app:app
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import wraps
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

from coe_template.artifacts.runs import load_artifacts
from coe_template.artifacts.stores import DirectoryStore
from coe_template.model.data import clean_text
from coe_template.model.train import apply_threshold

app = FastAPI(title="seed-style reference")
artifacts = load_artifacts(os.environ["BENCH_RUN_ID"], DirectoryStore(Path(os.environ["BENCH_MODEL_STORE"])))


class Text(BaseModel):
    text: str


class PredictPayload(BaseModel):
    texts: list[Text]


def construct_response(f):
    """The seed's envelope."""

    @wraps(f)
    def wrap(request: Request, *args: Any, **kwargs: Any) -> dict:
        results = f(request, *args, **kwargs)
        return {
            "message": results["message"],
            "method": request.method,
            "status-code": results["status-code"],
            "timestamp": datetime.now().isoformat(),
            "url": request.url._url,
            **({"data": results["data"]} if "data" in results else {}),
        }

    return wrap


@app.post("/predictions")
@construct_response
def predict(request: Request, payload: PredictPayload) -> dict:
    texts = [item.text for item in payload.texts]
    probabilities = artifacts.pipeline.predict_proba([clean_text(t) for t in texts])
    tags = apply_threshold(probabilities, artifacts.labels, artifacts.threshold)
    predictions = [
        {
            "input_text": text,
            "predicted_tag": tag,
            "probabilities": dict(zip(artifacts.labels, map(float, row), strict=True)),
        }
        for text, tag, row in zip(texts, tags, probabilities, strict=True)
    ]
    return {
        "message": HTTPStatus.OK.phrase,
        "status-code": HTTPStatus.OK,
        "data": {"predictions": predictions},
    }

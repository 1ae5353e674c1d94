"""Measure the quality figures of docs/quality.md, on the real public dataset beside the project.

    python bench/quality.py [--data ../shared/data/labeled_projects.csv] [--folds 5]

1. The shipped model (default args, bundled dataset), trained and evaluated with the real CLI in a
   throw-away store: weighted and per-class F1 on the real projects, ``other``'s precision and how
   many predictions fell back to ``other``, and the same at other thresholds; then the same recipe
   trained with ten other split seeds, since the split picks both the training rows and the threshold.
2. Stratified k-fold cross-validation on the real projects, the default pipeline: trained on the
   real training folds alone, and with the bundled dataset added to every training fold (the issue
   allows no other labeled data); mean ± std of the weighted F1.
3. Nested cross-validation: ``C`` chosen by an inner 3-fold grid search within each outer fold.

The real dataset is for measuring only: never copied into the project, never trained on by the
shipped model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import OTHER_TAG, Dataset, bundled_dataset_path, clean_text, load_dataset  # noqa: E402
from coe_template.model.predict import tag  # noqa: E402
from coe_template.model.train import apply_threshold, build_pipeline, cross_validate, train  # noqa: E402
from coe_template.registry import Registry  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.conftest import DEFAULT_ARGS, SHARED_DATA  # noqa: E402

#: Split seeds the shipped recipe is trained with, to show how much the split alone moves its score.
SEEDS = 10
#: ``C`` candidates of the nested cross-validation.
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)


def run(store: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "coe_template.cli", "--store", store, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    ).stdout


def nested_scores(
    pipeline: Pipeline, grid: dict[str, list], x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Outer-fold weighted F1, each with the ``grid`` point an inner 3-fold search chose on the
    outer training folds alone (never on the fold scored)."""
    scores, chosen = [], []
    for fitted, scored in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        inner = StratifiedKFold(3, shuffle=True, random_state=seed)
        search = GridSearchCV(pipeline, grid, scoring="f1_weighted", cv=inner).fit(x[fitted], y[fitted])
        chosen.append(search.best_params_)
        scores.append(f1_score(y[scored], search.predict(x[scored]), average="weighted"))
    return np.array(scores), chosen


def nested_cross_validate(real: Dataset, folds: int, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Outer-fold F1 of the default pipeline with ``C`` chosen inside (see :func:`nested_scores`)."""
    x, y = np.array([clean_text(t) for t in real.texts]), np.array(real.tags)
    pipeline = build_pipeline(load_args(DEFAULT_ARGS))
    scores, chosen = nested_scores(pipeline, {"clf__C": list(C_GRID)}, x, y, folds, seed)
    return scores, [float(point["clf__C"]) for point in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--folds", type=int, default=5)
    options = parser.parse_args()
    real = load_dataset(options.data)
    name = options.data.name

    with tempfile.TemporaryDirectory() as store:
        run(store, "db", "upgrade")
        started = time.perf_counter()
        run(store, "train")
        seconds = time.perf_counter() - started
        transfer = json.loads((out := run(store, "evaluate", "--data", str(options.data)))[out.index("{") :])
        registry = Registry.open(Settings(model_store=Path(store)).db_url, Path(store))
        try:
            artifacts = registry.load("project-tagger", 1)
        finally:
            registry.engine.dispose()
        predicted, probabilities = tag(real.texts, artifacts)
    performance = transfer["performance"]
    top = [artifacts.labels[i] for i in probabilities.argmax(axis=1)]
    fell_back = sum(p == OTHER_TAG != t for p, t in zip(predicted, top, strict=True))

    print(f"{'measure':<66} {'weighted F1':>11} {'samples':>8}")
    print(
        f"{'shipped model (bundled data), evaluated on ' + name:<66} "
        f"{performance['overall']['f1']:>11.3f} {performance['overall']['num_samples']:>8}"
    )
    for label, metrics in performance["class"].items():
        print(f"{'  class ' + label:<66} {metrics['f1']:>11.3f} {metrics['num_samples']:>8}")
    print(
        f"  threshold {artifacts.threshold:g}: {fell_back} of {len(real)} predictions fell back to other; "
        f"other's precision {performance['class'][OTHER_TAG]['precision']:.3f}; "
        f"trained in {seconds:.1f} s (CLI, with start-up)"
    )
    for threshold in (0.3, 0.4, 0.5):
        at = apply_threshold(probabilities, artifacts.labels, threshold)
        precision, *_ = precision_recall_fscore_support(real.tags, at, labels=[OTHER_TAG], zero_division=0)
        print(
            f"  at threshold {threshold}: weighted F1 {f1_score(real.tags, at, average='weighted'):.3f}, "
            f"{sum(p == OTHER_TAG != t for p, t in zip(at, top, strict=True))} fall back, "
            f"other's precision {precision[0]:.3f}"
        )

    args = load_args(DEFAULT_ARGS)
    bundled = load_dataset(bundled_dataset_path())
    cleaned = [clean_text(t) for t in real.texts]
    by_seed = []
    # The split decides both the training rows and the threshold: how much does it move the score?
    for seed in range(SEEDS):
        model = train(bundled, replace(args, seed=seed))
        at = apply_threshold(model.pipeline.predict_proba(cleaned), model.labels, model.threshold)
        by_seed.append((f1_score(real.tags, at, average="weighted"), model.threshold))
    scores = np.array([score for score, _ in by_seed])
    print(
        f"{f'  the same recipe over {SEEDS} split seeds (0-{SEEDS - 1}), mean':<66} {scores.mean():>11.3f} "
        f"{len(real):>8}   ± {scores.std():.3f}  (thresholds: {', '.join(f'{t:g}' for _, t in by_seed)})"
    )

    folds = options.folds
    alone = cross_validate(real, args, folds)
    print(
        f"{f'{folds}-fold CV on {name}, default pipeline':<66} {alone.mean():>11.3f} {len(real):>8}"
        f"   ± {alone.std():.3f}"
    )
    added = cross_validate(real, args, folds, extra=bundled)
    print(
        f"{f'{folds}-fold CV on {name}, bundled data added to training':<66} {added.mean():>11.3f} "
        f"{len(real):>8}   ± {added.std():.3f}"
    )
    nested, chosen = nested_cross_validate(real, folds)
    print(
        f"{f'{folds}-fold nested CV on {name}, C chosen inside':<66} {nested.mean():>11.3f} {len(real):>8}"
        f"   ± {nested.std():.3f}  (C: {', '.join(f'{c:g}' for c in chosen)})"
    )


if __name__ == "__main__":
    main()

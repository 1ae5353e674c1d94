"""Which linear model, trained on the real projects, scores best under nested cross-validation?

    python bench/model_search.py [--data ../shared/data/labeled_projects.csv] [--seed 0] [NAME ...]

Each candidate is the word TF-IDF of the default pipeline joined to ``char_wb`` n-grams (a
``FeatureUnion``), then a linear classifier. Its hyper-parameters (the classifier's strength, the
character n-gram range, English stop words or none) are chosen by an inner 3-fold grid search
inside each outer training fold, never on the fold scored: the figure is the mean ± std of the
weighted F1 over a stratified 5-fold split, as ``bench/quality.py``'s. ``served`` says whether
the compiled predictor (``coe_template/model/compiled.py``) serves the candidate as it is: it needs
probabilities from a ``LogisticRegression``.

Single-threaded BLAS: on 2 shared cores, OpenBLAS's threads made each fit many times slower.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier  # noqa: E402
from sklearn.naive_bayes import ComplementNB  # noqa: E402
from sklearn.pipeline import FeatureUnion, Pipeline  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import nested_scores  # noqa: E402
from coe_template.model.args import load_args  # noqa: E402
from coe_template.model.data import clean_text, load_dataset  # noqa: E402
from coe_template.model.train import build_pipeline  # noqa: E402
from tests.conftest import DEFAULT_ARGS, SHARED_DATA  # noqa: E402

#: The features every candidate's inner search chooses among.
FEATURE_GRID: dict[str, list] = {
    "features__char__ngram_range": [(2, 4), (2, 5), (3, 5)],
    "features__word__stop_words": ["english", None],
}
#: name → (classifier, its own grid, served by the compiled predictor).
CANDIDATES: dict[str, tuple[BaseEstimator, dict[str, list], bool]] = {
    "logistic": (
        LogisticRegression(class_weight="balanced", max_iter=1000, random_state=1234),
        {"clf__C": [1.0, 3.0, 10.0, 30.0, 100.0]},
        True,
    ),
    "sgd-huber": (
        SGDClassifier(
            loss="modified_huber", class_weight="balanced", max_iter=2000, tol=1e-4, random_state=0
        ),
        {"clf__alpha": [1e-4, 3e-4, 1e-3, 3e-3]},
        False,
    ),
    "linear-svc": (
        CalibratedClassifierCV(LinearSVC(class_weight="balanced", random_state=0), cv=3),
        {"clf__estimator__C": [0.1, 0.3, 1.0, 3.0]},
        False,
    ),
    "ridge": (RidgeClassifier(class_weight="balanced"), {"clf__alpha": [0.1, 0.3, 1.0, 3.0]}, False),
    "complement-nb": (ComplementNB(), {"clf__alpha": [0.01, 0.03, 0.1, 0.3, 1.0]}, False),
}


def union(classifier: BaseEstimator) -> Pipeline:
    """The default pipeline's word TF-IDF beside ``char_wb`` n-grams, then ``classifier``."""
    words = build_pipeline(load_args(DEFAULT_ARGS))[0]
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=False)
    return Pipeline([("features", FeatureUnion([("word", words), ("char", chars)])), ("clf", classifier)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"candidates to run [default: all: {', '.join(CANDIDATES)}]")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    if unknown := set(options.names) - set(CANDIDATES):
        parser.error(f"unknown candidate(s): {', '.join(sorted(unknown))}; known: {', '.join(CANDIDATES)}")
    real = load_dataset(options.data)
    x, y = np.array([clean_text(t) for t in real.texts]), np.array(real.tags)
    print(f"{'words + char_wb, then':<16} {'nested 5-fold weighted F1':>26} {'served':>7} {'minutes':>8}")
    for name in options.names or CANDIDATES:
        classifier, grid, served = CANDIDATES[name]
        started = time.perf_counter()
        scores, _ = nested_scores(union(classifier), {**FEATURE_GRID, **grid}, x, y, seed=options.seed)
        minutes = (time.perf_counter() - started) / 60
        print(
            f"{name:<16} {scores.mean():>18.3f} ± {scores.std():.3f} {'yes' if served else 'no':>7} {minutes:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

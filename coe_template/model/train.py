"""Fit the TF-IDF + logistic regression pipeline and choose the ``other`` threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from coe_template.model.args import TrainingArgs
from coe_template.model.data import OTHER_TAG, Dataset, DatasetError, clean_text
from coe_template.model.evaluate import evaluate

#: Candidate fallback thresholds tried on the validation split.
THRESHOLDS = np.round(np.arange(0.0, 0.91, 0.05), 2)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    labels: list[str]
    threshold: float
    performance: dict
    args: TrainingArgs
    dataset: dict


def build_pipeline(args: TrainingArgs) -> Pipeline:
    vectorizer = TfidfVectorizer(
        analyzer=args.analyzer,
        ngram_range=(1, args.ngram_max),
        min_df=args.min_df,
        max_df=args.max_df,
        sublinear_tf=args.sublinear_tf,
        stop_words="english" if args.stop_words else None,
        lowercase=False,  # clean_text has already lower-cased
        dtype=np.float64,
    )
    classifier = LogisticRegression(
        C=args.C,
        class_weight=args.class_weight,
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    return Pipeline([("tfidf", vectorizer), ("clf", classifier)])


def apply_threshold(probabilities: np.ndarray, labels: Sequence[str], threshold: float) -> list[str]:
    """Top tag per row, or ``other`` where the model is not sure enough."""
    # Python ints and floats: iterating the arrays would make a NumPy scalar of every element.
    best, top = probabilities.argmax(axis=1).tolist(), probabilities.max(axis=1).tolist()
    return [labels[i] if p >= threshold else OTHER_TAG for i, p in zip(best, top, strict=True)]


def choose_threshold(probabilities: np.ndarray, labels: Sequence[str], y_true: Sequence[str]) -> float:
    """The lowest threshold whose weighted F1 is within one standard error of the best.

    On a validation split of a few hundred rows neighbouring thresholds score within noise of
    each other. Taking the strict best picked 0.35-0.45 by one or two rows, and every text the
    model is less sure of than of its own kind of data (short ones, new wording) fell to ``other``.
    """
    scores = np.array(
        [
            f1_score(y_true, apply_threshold(probabilities, labels, t), average="weighted", zero_division=0)
            for t in THRESHOLDS
        ]
    )
    best = scores.max()
    noise = np.sqrt(best * (1 - best) / len(y_true))
    return float(THRESHOLDS[int(np.argmax(scores >= best - noise))])


def split(dataset: Dataset, args: TrainingArgs) -> tuple[tuple[list[str], list[str]], ...]:
    """Stratified train/validation/test splits, fixed by the seed."""
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            dataset.texts,
            dataset.tags,
            test_size=args.test_size,
            stratify=dataset.tags,
            random_state=args.seed,
        )
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest,
            y_rest,
            test_size=args.val_size / (1 - args.test_size),
            stratify=y_rest,
            random_state=args.seed,
        )
    except ValueError as exc:
        raise DatasetError(
            f"cannot make stratified train/validation/test splits of {len(dataset)} rows: {exc}. "
            "Every tag needs enough examples to appear in each split."
        ) from None
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def train(dataset: Dataset, args: TrainingArgs, progress: Progress = lambda step: None) -> TrainedModel:
    """Train on the training split, tune the threshold on validation, score on test."""
    progress("splitting data")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split(dataset, args)

    progress("fitting the pipeline")
    pipeline = build_pipeline(args)
    pipeline.fit([clean_text(t) for t in x_train], y_train)
    labels = [str(label) for label in pipeline.classes_]

    progress("choosing the threshold")
    if args.threshold is None:
        val_probabilities = pipeline.predict_proba([clean_text(t) for t in x_val])
        threshold = choose_threshold(val_probabilities, labels, y_val)
    else:
        threshold = args.threshold

    progress("evaluating on the test split")
    test_probabilities = pipeline.predict_proba([clean_text(t) for t in x_test])
    performance = evaluate(x_test, y_test, apply_threshold(test_probabilities, labels, threshold), labels)
    return TrainedModel(
        pipeline=pipeline,
        labels=labels,
        threshold=threshold,
        performance=performance,
        args=args,
        dataset=dict(dataset.fingerprint),
    )


def cross_validate(
    dataset: Dataset, args: TrainingArgs, folds: int = 5, extra: Dataset | None = None, seed: int = 0
) -> np.ndarray:
    """Weighted F1 of each stratified fold, the pipeline of ``args`` fitted on the other folds
    (and on ``extra``, never scored), predicting without the fallback: how the family generalises."""
    x, y = np.array([clean_text(t) for t in dataset.texts]), np.array(dataset.tags)
    scores = []
    for fit, score in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        texts, tags = list(x[fit]), list(y[fit])
        if extra is not None:
            texts += [clean_text(t) for t in extra.texts]
            tags += extra.tags
        pipeline = build_pipeline(args).fit(texts, tags)
        scores.append(f1_score(y[score], pipeline.predict(x[score]), average="weighted"))
    return np.array(scores)

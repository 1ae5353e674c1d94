"""The compiled predictor against scikit-learn's ``predict_proba``, in process, for both pipeline shapes.

    python bench/predictor.py

Fits, on ../shared/data/labeled_projects.csv when it is there (else on the bundled data),
the two shapes the compiled predictor covers: ``TfidfVectorizer → LogisticRegression``
(the default, word 1–2-grams) and ``FeatureUnion([words 1–2, char_wb 2–5]) →
LogisticRegression``; then prints µs per text for 1 and for 100 texts per call, each
compiled and by scikit-learn, and what building the char_wb terms costs with scikit-learn's
analyzer and with the compiled one. Ratios are computed within the run.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving import REQUEST_TEXTS, SHARED_DATA, per_text_us  # noqa: E402
from coe_template.model.args import parse_args  # noqa: E402
from coe_template.model.compiled import compile_pipeline  # noqa: E402
from coe_template.model.data import bundled_dataset_path, clean_text, load_dataset  # noqa: E402
from coe_template.model.train import build_pipeline  # noqa: E402


def union() -> Pipeline:
    def tfidf(**params: object) -> TfidfVectorizer:
        return TfidfVectorizer(sublinear_tf=True, lowercase=False, dtype=np.float64, **params)

    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("words", tfidf(ngram_range=(1, 2), stop_words="english")),
                        ("chars", tfidf(analyzer="char_wb", ngram_range=(2, 5))),
                    ],
                    transformer_weights={"chars": 0.5},
                ),
            ),
            ("clf", LogisticRegression(C=30, class_weight="balanced", max_iter=1000)),
        ]
    )


def main() -> None:
    data = SHARED_DATA if SHARED_DATA.exists() else bundled_dataset_path()
    dataset = load_dataset(data)
    x, y = [clean_text(t) for t in dataset.texts], dataset.tags
    cleaned = [clean_text(t) for t in REQUEST_TEXTS]
    one, hundred = cleaned[len(cleaned) // 2], cleaned[:100]
    print(f"fitted on {data.name}; µs per text, best of 5 rounds\n")
    print(f"{'shape':<34}{'texts/call':>11}{'scikit-learn':>14}{'compiled':>10}{'speed-up':>10}")
    for name, pipeline in (
        ("TfidfVectorizer → LR (default)", build_pipeline(parse_args({}))),
        ("FeatureUnion words + char_wb → LR", union()),
    ):
        pipeline.fit(x, y)
        compiled = compile_pipeline(pipeline)
        for texts in ([one], hundred):
            sklearn_us = per_text_us(partial(pipeline.predict_proba, texts), len(texts))
            compiled_us = per_text_us(partial(compiled.predict_proba, texts), len(texts))
            print(
                f"{name:<34}{len(texts):>11}{sklearn_us:>14.1f}{compiled_us:>10.1f}{sklearn_us / compiled_us:>9.1f}x"
            )
    chars, block = pipeline[0].transformer_list[1][1], compiled._blocks[1]
    lookup, analyze = chars.vocabulary_.get, chars.build_analyzer()
    slow_us = per_text_us(
        lambda: [[j for j in map(lookup, analyze(t)) if j is not None] for t in hundred], 100
    )
    terms_us = per_text_us(lambda: [block.analyze(t) for t in hundred], 100)
    fast_us = per_text_us(lambda: [block.columns(t) for t in hundred], 100)
    print(
        f"\nchar_wb 2–5, µs per text: scikit-learn's analyzer + vocabulary look-ups {slow_us:.1f}; "
        f"the compiled analyzer alone {terms_us:.1f}; the compiled block's columns (words cached) "
        f"{fast_us:.1f} ({slow_us / fast_us:.1f}x)"
    )


if __name__ == "__main__":
    main()

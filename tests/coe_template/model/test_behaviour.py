"""Behavioural tests of the shipped model: the default args trained on the bundled dataset.

One-sentence cases written for this project, the kind people type into Swagger UI first: minimum
functionality per tag, invariance to names, punctuation and case, and direction when a domain word
is added. Every case must be right: a short clear statement falling to ``other`` is the bug of
issue 13 (docs/quality.md says why it happened).
"""

from __future__ import annotations

import csv

import pytest

from coe_template.model.data import bundled_dataset_path, clean_text, project_text
from coe_template.model.predict import predict

NLP, CV, OPS, OTHER = "natural-language-processing", "computer-vision", "mlops", "other"


def tag_of(text: str, artifacts) -> str:
    return predict([text], artifacts)[0]["predicted_tag"]


def probability(text: str, tag: str, artifacts) -> float:
    return predict([text], artifacts)[0]["probabilities"][tag]


MINIMUM_FUNCTIONALITY = {
    NLP: [
        "Sentiment analysis of movie reviews.",
        "Named entity recognition for legal documents.",
        "Machine translation from English to German.",
        "Question answering over Wikipedia articles.",
        "Summarizing news articles with a transformer.",
        "A chatbot that answers customer questions.",
        "Using BERT to sort documents into categories.",
        "Spam detection in emails using word embeddings.",
        "Fine-tuning a large language model.",
        "Topic modeling of tweets.",
        "Transfer learning with transformers for text classification.",
        "LLMs explained.",
        # Wrong with the model of 0.1.0, most of them `other`: generic words such as "learning" counted for it.
        "Learning NLP.",
        "Deep learning for NLP.",
        "Chatbot with deep learning.",
        "Speech recognition.",
    ],
    CV: [
        "Image classification of cats and dogs.",
        "Object detection with YOLO.",
        "Face recognition from webcam video.",
        "Semantic segmentation of satellite images.",
        "Generating images with a GAN.",
        "Pose estimation from video frames.",
        "Counting cars in traffic camera footage.",
        "Detecting tumors in MRI scans.",
        "Depth estimation from a single image.",
        "ML applied to image classification.",
    ],
    OPS: [
        "Packaging a trained model in a Docker container.",
        "Serving models behind a REST API with FastAPI.",
        "Monitoring data drift in production.",
        "Logging training runs and metrics to MLflow.",
        "A feature store for machine learning teams.",
        "CI/CD pipelines for machine learning models.",
        "Versioning data and models with DVC.",
        "Scaling model inference on Kubernetes.",
        "MLOps.",
        "Model monitoring.",
        "A/B testing models in production.",
        "Practical tips for MLOps.",
        "Putting deep learning models into production.",
        # Wrong with the model of 0.1.0, all `other` (see above).
        "Tracking experiments.",
        "MLOps for beginners.",
        "Learning MLOps.",
        "An MLOps project.",
    ],
    OTHER: [
        "Predicting house prices with gradient boosting.",
        "Reinforcement learning agent that plays Atari games.",
        "Forecasting sales with time series models.",
        "A recommender system for movies.",
        "Fraud detection on credit card transactions.",
        "Clustering customers with k-means.",
        "Graph neural networks for molecule property prediction.",
    ],
}


NAMES = [
    ("Using NLP with {}", ["Python", "Java", "Rust"], NLP),
    ("Sentiment analysis of tweets by {}.", ["Alice", "Bob", "Priya"], NLP),
    ("Object detection in images with {}.", ["PyTorch", "TensorFlow", "JAX"], CV),
    ("Serving and monitoring models in production at {}.", ["Acme", "Globex", "Initech"], OPS),
    ("Forecasting demand for {} stores.", ["Tokyo", "Lagos", "Lima"], OTHER),
]

PUNCTUATION_AND_CASE = [
    (["Text summarization", "text summarization!", "TEXT SUMMARIZATION...", "Text summarization?"], NLP),
    (["Image segmentation", "image segmentation.", "IMAGE SEGMENTATION!!", "Image-segmentation"], CV),
    (
        [
            "Model serving with TorchServe",
            "model serving, with torchserve.",
            "MODEL SERVING WITH TORCHSERVE",
        ],
        OPS,
    ),
]

VISION_WORDS = [
    (
        "A new optimizer for training neural networks.",
        "A new optimizer for training neural networks on images and video for object detection.",
    ),
    ("Learning from data.", "Learning from image pixels and video frames."),
    ("Predicting house prices.", "Predicting house prices from photos and images."),
]

DOMAIN_WORDS = [
    ("A project about models.", NLP, "A project about language models for text and sentences."),
    ("A project about models.", OPS, "A project about deploying and monitoring models in production."),
    ("Learning from data.", NLP, "Learning from text data."),
    ("Learning from data.", OPS, "Learning from data in production."),
    ("A neural network.", CV, "A neural network for images."),
    ("A neural network.", NLP, "A neural network for sentences."),
]


def case_texts() -> list[str]:
    """Every text the cases below send to the model."""
    return (
        [text for texts in MINIMUM_FUNCTIONALITY.values() for text in texts]
        + [text.format(v) for text, variants, _ in NAMES for v in variants]
        + [text for variants, _ in PUNCTUATION_AND_CASE for text in variants]
        + [text for pair in VISION_WORDS for text in pair]
        + [text for text, _, more in DOMAIN_WORDS for text in (text, more)]
    )


def test_no_case_is_a_bundled_row():
    """A case the model was trained on tests memory, not generalisation."""
    with bundled_dataset_path().open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    bundled = {
        clean_text(text)
        for row in rows
        for text in (row["title"], row["description"], project_text(row["title"], row["description"]))
    }
    assert [text for text in case_texts() if clean_text(text) in bundled] == []


@pytest.mark.parametrize(
    ("text", "tag"), [(text, tag) for tag, texts in MINIMUM_FUNCTIONALITY.items() for text in texts]
)
def test_minimum_functionality(artifacts, text, tag):
    assert tag_of(text, artifacts) == tag


@pytest.mark.parametrize(("text", "variants", "tag"), NAMES)
def test_invariance_to_names(artifacts, text, variants, tag):
    assert [tag_of(text.format(v), artifacts) for v in variants] == [tag] * len(variants)


@pytest.mark.parametrize(("variants", "tag"), PUNCTUATION_AND_CASE)
def test_invariance_to_punctuation_and_case(artifacts, variants, tag):
    assert [tag_of(text, artifacts) for text in variants] == [tag] * len(variants)


@pytest.mark.parametrize(("text", "with_vision"), VISION_WORDS)
def test_adding_vision_words_raises_the_probability_of_computer_vision(artifacts, text, with_vision):
    before = probability(text, CV, artifacts)
    after = probability(with_vision, CV, artifacts)
    assert after > before
    assert tag_of(with_vision, artifacts) == CV


@pytest.mark.parametrize(("text", "tag", "more"), DOMAIN_WORDS)
def test_adding_a_domain_word_raises_its_tags_probability(artifacts, text, tag, more):
    assert probability(more, tag, artifacts) > probability(text, tag, artifacts)

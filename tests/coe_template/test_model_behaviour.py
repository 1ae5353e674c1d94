"""Behavioural tests of the model trained on the bundled dataset.

Clear-cut cases any sensible tagger gets right: minimum functionality, invariance to words
that carry no meaning for the tag, and direction when strong evidence is added.
"""

from __future__ import annotations

import pytest

from coe_template.predict import predict

NLP, CV, OPS = "natural-language-processing", "computer-vision", "mlops"


def tag_of(text: str, artifacts) -> str:
    return predict([text], artifacts)[0]["predicted_tag"]


def probability(text: str, tag: str, artifacts) -> float:
    return predict([text], artifacts)[0]["probabilities"][tag]


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("ML applied to image classification.", CV),
        ("Object detection in images with convolutional networks.", CV),
        ("Semantic segmentation of street scenes from camera images.", CV),
        ("Transfer learning with transformers for text classification.", NLP),
        ("Fine-tuning transformers for text classification of news articles.", NLP),
        ("Sentiment analysis of product reviews with a language model.", NLP),
        ("Deploying, serving and monitoring machine learning models in production.", OPS),
        ("Serving models with Docker and Kubernetes and monitoring them for drift.", OPS),
    ],
)
def test_minimum_functionality(artifacts, text, tag):
    assert tag_of(text, artifacts) == tag


@pytest.mark.parametrize(
    ("text", "variants", "tag"),
    [
        ("Using NLP with {}", ["Python", "Java", "Rust"], NLP),
        ("Sentiment analysis of tweets by {}.", ["Alice", "Bob", "Priya"], NLP),
        ("Object detection in images with {}.", ["PyTorch", "TensorFlow", "JAX"], CV),
        ("Serving and monitoring models in production at {}.", ["Acme", "Globex", "Initech"], OPS),
    ],
)
def test_invariance_to_names_and_irrelevant_words(artifacts, text, variants, tag):
    assert [tag_of(text.format(v), artifacts) for v in variants] == [tag] * len(variants)


@pytest.mark.parametrize(
    ("text", "with_vision"),
    [
        ("A new optimizer for training neural networks.",
         "A new optimizer for training neural networks on images and video for object detection."),
        ("Learning from data.", "Learning from image pixels and video frames."),
        ("Predicting house prices.", "Predicting house prices from photos and images."),
    ],
)
def test_adding_vision_words_raises_the_probability_of_computer_vision(artifacts, text, with_vision):
    before = probability(text, CV, artifacts)
    after = probability(with_vision, CV, artifacts)
    assert after > before
    assert tag_of(with_vision, artifacts) == CV


@pytest.mark.parametrize(
    ("text", "tag", "more"),
    [
        ("A project about models.", NLP, "A project about language models for text and sentences."),
        ("A project about models.", OPS, "A project about deploying and monitoring models in production."),
    ],
)
def test_adding_evidence_for_a_tag_raises_its_probability(artifacts, text, tag, more):
    assert probability(more, tag, artifacts) > probability(text, tag, artifacts)

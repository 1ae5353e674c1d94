"""The package's shapes are the spec's: what the registry accepts, the API can address and serve."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from coe_template.model.explain import TOP_TERMS, Explanation, Term
from coe_template.shapes import MODEL_NAME_PATTERN, PERFORMANCE, check_model_name, performance_problem

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi" / "spec.yaml").read_text())


def resolved(schema: Any) -> Any:
    """``schema`` with every ``$ref`` written out and descriptions and examples left off."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return resolved(SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
        return {k: resolved(v) for k, v in schema.items() if k not in ("description", "example")}
    if isinstance(schema, list):
        return [resolved(v) for v in schema]
    return schema


def test_the_model_name_rule_is_the_specs():
    assert SPEC["components"]["parameters"]["ModelName"]["schema"]["pattern"] == MODEL_NAME_PATTERN


def test_the_performance_shape_is_the_specs():
    assert resolved(SPEC["components"]["schemas"]["Performance"]) == PERFORMANCE


@pytest.mark.parametrize("name", ["project-tagger", "0", "a" * 63, "9-lives"])
def test_names_the_api_can_address_are_accepted(name):
    assert check_model_name(name) == name


def test_a_performance_as_training_makes_it_is_accepted(trained_model):
    assert performance_problem(trained_model.performance) is None


def test_the_number_of_terms_an_explanation_lists_is_the_specs():
    assert SPEC["components"]["schemas"]["Explanation"]["properties"]["terms"]["maxItems"] == TOP_TERMS


def test_an_explanations_fields_are_the_specs():
    spec = SPEC["components"]["schemas"]
    assert [f.name for f in fields(Explanation)] == spec["Explanation"]["required"]
    assert [f.name for f in fields(Term)] == spec["ExplanationTerm"]["required"]

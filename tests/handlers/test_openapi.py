"""Whatever a client sends gets an answer the spec documents: never a 500.

Schemathesis generates requests for every operation of ``openapi/spec.yaml``, valid and
invalid (bodies, parameters, media types, path segments of any characters), sends them
to the real app and checks each response: no server error, and a status code, content
type, headers and body that the spec declares for that operation.
"""

from __future__ import annotations

from dataclasses import replace

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.settings import Settings
from handlers.app import SPEC_DIR, create_app
from tests.conftest import ADMIN, examples, seeded_registry

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_path(SPEC_DIR / "spec.yaml")


@pytest.fixture
def fuzzed_app(tmp_path, trained_model, settings):
    """The real app on a registry of its own, which the generated requests may change."""
    store = tmp_path / "store"
    seeded_registry(Settings(model_store=store).db_url, store, trained_model, versions=2).engine.dispose()
    app = create_app(replace(settings, model_store=store, batch_in_server=False))
    yield app
    app.app.extensions["coe_template"].registry.engine.dispose()


# Each accepted request would start a training process; its refusals are tested in test_versions.py.
@schema.exclude(method="POST", path="/models/{model-name}/versions").parametrize()
@hypothesis.settings(
    max_examples=examples(100), deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
)
def test_every_operation_answers_as_documented(case, fuzzed_app):
    case.call_and_validate(app=fuzzed_app, headers=ADMIN, checks=CHECKS)

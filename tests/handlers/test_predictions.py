import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from coe_template.model.data import ACCEPTED_TAGS, clean_text
from coe_template.model.predict import predict
from handlers.app import create_app
from tests.conftest import examples
from tests.prediction_ids import without_ids
from tests.problems import shortened

TEXTS = [
    "Transfer learning with transformers for text classification.",
    "ML applied to image classification.",
    "Deploying and monitoring models in production with Kubernetes.",
]


def post(client, body):
    return client.post("/predictions", json=body)


def test_predicts_each_text_in_order(client, artifacts, assert_envelope):
    response = post(client, {"texts": [{"text": t} for t in TEXTS]})
    data = assert_envelope(response, method="POST", path="/predictions")
    assert data["model"] == {"name": "project-tagger", "version": 1, "run_id": artifacts.run_id}
    assert [p["input_text"] for p in data["predictions"]] == TEXTS
    for prediction in data["predictions"]:
        assert prediction["predicted_tag"] in ACCEPTED_TAGS
        assert set(prediction["probabilities"]) == set(ACCEPTED_TAGS)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    # The API gives exactly what the package gives.
    assert without_ids(response) == json.loads(json.dumps(predict(TEXTS, artifacts)))


def test_image_classification_is_computer_vision(client, assert_envelope):
    data = assert_envelope(post(client, {"texts": [{"text": TEXTS[1]}]}), method="POST")
    assert data["predictions"][0]["predicted_tag"] == "computer-vision"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"texts": []}, "[] should be non-empty - 'texts'"),
        ({}, "'texts' is a required property"),
        ({"texts": [{}]}, "'text' is a required property - 'texts.0'"),
        ({"texts": [{"text": ""}]}, "'' has no text - 'texts.0.text'"),
        ({"texts": [{"text": 42}]}, "42 is not of type 'string' - 'texts.0.text'"),
        ({"texts": "a project"}, "'a project' is not of type 'array' - 'texts'"),
        ({"texts": ["a project"]}, "'a project' is not of type 'object' - 'texts.0'"),
        (["a project"], "['a project'] is not of type 'object'"),
        (
            {"texts": [{"text": "ok", "lang": "en"}]},
            "Additional properties are not allowed ('lang' was unexpected) - 'texts.0'",
        ),
        (
            {"texts": [{"text": "ok"}], "model": 2},
            "Additional properties are not allowed ('model' was unexpected)",
        ),
        ({"texts": [{"text": "x"}] * 1001}, shortened(f"{[{'text': 'x'}] * 1001} is too long - 'texts'")),
        ({"texts": [{"text": "x" * 20001}]}, shortened(f"{'x' * 20001!r} is too long - 'texts.0.text'")),
    ],
)
def test_malformed_bodies_say_what_is_wrong(client, assert_problem, body, detail):
    assert_problem(post(client, body), 400, detail)


@pytest.mark.parametrize("text", [" \t", "\n\r\x0b\x0c", "\x1c\x1d\x1e\x1f", "\x85\xa0\u3000"])
def test_a_text_of_whitespace_only_is_refused_by_the_spec(client, text):
    """Whitespace as str.isspace() has it, control characters \\x1c-\\x1f included: the spec's \\S."""
    body = {"texts": [{"text": "a real project"}, {"text": text}]}
    response = client.post("/predictions", json=body, headers={"X-Request-ID": "in-6"})
    assert response.status_code == 400
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "request_id": "in-6",
        "detail": f"{text!r} has no text - 'texts.1.text'",
    }


def test_a_text_of_control_characters_that_are_not_whitespace_is_tagged(client, assert_envelope):
    body = {"texts": [{"text": "\x01\x02\x7f"}]}
    assert (
        assert_envelope(post(client, body), method="POST")["predictions"][0]["input_text"] == "\x01\x02\x7f"
    )


def test_non_json_body_is_a_400(client, assert_problem):
    response = client.post(
        "/predictions", content=b"{texts: oops", headers={"content-type": "application/json"}
    )
    assert_problem(
        response,
        400,
        "request body is not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)",
    )


def test_other_media_types_are_a_415(client, assert_problem):
    response = client.post("/predictions", content=b"texts=a", headers={"content-type": "text/plain"})
    assert_problem(response, 415, "Invalid Content-type (text/plain), expected ['application/json']")


def test_missing_body_is_a_400(client, assert_problem):
    assert_problem(
        client.post("/predictions", headers={"content-type": "application/json"}),
        400,
        "RequestBody is required",
    )


def test_error_detail_does_not_echo_a_huge_value(client, assert_problem):
    # Both ends kept: the start quotes the value, the end says what is wrong with it.
    assert_problem(
        post(client, {"texts": "y" * 500_000}),
        400,
        f"'{'y' * 132} … {'y' * 232}' is not of type 'array' - 'texts'",
    )


@pytest.fixture(scope="module")
def small_limit_client(settings):
    with create_app(replace(settings, max_body_bytes=1000)).test_client() as client:
        yield client


def test_body_over_the_limit_is_a_413(small_limit_client, assert_problem):
    body = {"texts": [{"text": "x" * 2000}]}
    response = post(small_limit_client, body)
    assert_problem(
        response,
        413,
        f"request body of {len(response.request.content)} bytes exceeds the limit of 1000 bytes",
    )


def test_chunked_body_is_refused_unread(small_limit_client, assert_problem):
    chunks = (b"x" * 300 for _ in range(10))  # no Content-Length: size unknown until read
    response = small_limit_client.post(
        "/predictions", content=chunks, headers={"content-type": "application/json"}
    )
    assert_problem(
        response, 411, "send the body with a Content-Length header; chunked bodies are not accepted"
    )


def test_body_under_the_limit_is_served(small_limit_client, artifacts, assert_envelope):
    body = {"texts": [{"text": "a small project"}]}
    assert len(json.dumps(body)) < 1000
    response = post(small_limit_client, body)
    assert_envelope(response, method="POST")
    assert without_ids(response) == json.loads(json.dumps(predict(["a small project"], artifacts)))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@hypothesis_settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values
    | st.fixed_dictionaries({"texts": st.lists(st.fixed_dictionaries({"text": st.text()}), max_size=3)})
)
def test_no_body_makes_a_server_error(client, body):
    response = post(client, body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.headers["content-type"] == "application/problem+json"


EXPLAINED = [
    "Real-time object detection on a Raspberry Pi.",
    "Fine-tuning BERT for sentiment analysis of tweets.",
    "qqqq",
]


def without_explanations(data: dict) -> dict:
    return {
        **data,
        "predictions": [{k: v for k, v in p.items() if k != "explanation"} for p in data["predictions"]],
    }


@pytest.mark.parametrize("path", ["/predictions", "/models/project-tagger/versions/1/predictions"])
def test_explained_predictions_say_which_terms_of_the_text_made_the_tag(
    client, artifacts, assert_envelope, path
):
    body = {"texts": [{"text": t} for t in EXPLAINED]}
    plain = client.post(path, json=body)
    explained = client.post(f"{path}?explain=true", json=body)
    data = assert_envelope(explained, method="POST", path=f"{path}?explain=true")
    # The same predictions (each with an id of its own), each with its explanation.
    assert without_explanations({"predictions": without_ids(explained)}) == {
        "predictions": without_ids(plain)
    }
    assert data["model"] == plain.json()["data"]["model"]
    first = artifacts.pipeline[0]  # one vectorizer, or a FeatureUnion of them
    vectorizers = [v for _, v in first.transformer_list] if hasattr(first, "transformer_list") else [first]
    for text, prediction in zip(EXPLAINED, data["predictions"], strict=True):
        why = prediction["explanation"]
        assert set(why) == {"tag", "intercept", "logit", "terms", "remainder"}
        probabilities = prediction["probabilities"]
        assert why["tag"] == max(probabilities, key=probabilities.get) == prediction["predicted_tag"]
        assert why["intercept"] + sum(t["weight"] for t in why["terms"]) + why["remainder"] == pytest.approx(
            why["logit"], rel=0, abs=1e-9
        )
        k = list(artifacts.pipeline.classes_).index(why["tag"])
        assert why["logit"] == pytest.approx(
            artifacts.pipeline.decision_function([clean_text(text)])[0][k], abs=1e-9
        )
        made = {(v.analyzer, term) for v in vectorizers for term in v.build_analyzer()(clean_text(text))}
        for term in why["terms"]:
            assert set(term) == {"term", "analyzer", "weight"}
            assert (term["analyzer"], term["term"]) in made and term["weight"] > 0
    first = [t["term"] for t in data["predictions"][0]["explanation"]["terms"]]
    assert {"detection", "object"} <= set(first)
    assert (
        data["predictions"][2]["explanation"]["terms"] == []
    )  # no word the model knows: its intercept alone


@pytest.mark.parametrize("query", ["", "?explain=false", "?explain=FALSE"])
def test_unexplained_predictions_are_as_they_always_were(client, artifacts, assert_envelope, query):
    response = post_query(client, query, EXPLAINED)
    assert_envelope(response, method="POST")
    assert without_ids(response) == json.loads(json.dumps(predict(EXPLAINED, artifacts)))


def post_query(client, query: str, texts: list[str], headers=None):
    return client.post(f"/predictions{query}", json={"texts": [{"text": t} for t in texts]}, headers=headers)


@pytest.mark.parametrize("path", ["/predictions", "/models/project-tagger/versions/1/predictions"])
@pytest.mark.parametrize("value", ["maybe", "1", "", "yes"])
def test_explain_must_be_true_or_false(client, path, value):
    response = client.post(
        f"{path}?explain={value}",
        json={"texts": [{"text": "a project"}]},
        headers={"X-Request-ID": "explain-1"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "request_id": "explain-1",
        "detail": f"{value!r} is not of type 'boolean' - query parameter 'explain'",
    }


def test_explained_predictions_are_counted_and_bounded_as_any_other(client):
    from tests.handlers.test_metrics import scrape, value

    before = scrape(client)
    assert post_query(client, "?explain=true", ["ML applied to image classification."] * 3).status_code == 200
    after = scrape(client)
    labels = {"model": "project-tagger", "version": "1", "tag": "computer-vision"}
    assert (
        value(after, "coe_predictions_total", **labels) - value(before, "coe_predictions_total", **labels)
        == 3
    )
    for texts in (["x"] * 1001, ["x" * 20_001]):  # the request's limits, refused exactly as without explain
        refused = [
            post_query(client, query, texts, headers={"X-Request-ID": "explain-2"})
            for query in ("", "?explain=true")
        ]
        assert [r.status_code for r in refused] == [400, 400]
        assert refused[1].json() == refused[0].json()
        assert (
            refused[1]
            .json()["detail"]
            .endswith("is too long - " + ("'texts'" if len(texts) > 1 else "'texts.0.text'"))
        )

import pytest


def test_without_filter_returns_everything(client, artifacts, assert_envelope):
    data = assert_envelope(client.get("/performance"), path="/performance")
    assert data["performance"] == artifacts.performance
    assert set(data["performance"]) == {"overall", "class", "slices"}


@pytest.mark.parametrize("part", ["overall", "class", "slices"])
def test_filter_returns_only_that_part(client, artifacts, assert_envelope, part):
    data = assert_envelope(client.get(f"/performance?filter={part}"), path=f"/performance?filter={part}")
    assert data["performance"] == {part: artifacts.performance[part]}


def test_every_block_counts_its_samples(client, assert_envelope):
    performance = assert_envelope(client.get("/performance"))["performance"]
    assert performance["overall"]["num_samples"] > 0
    assert set(performance["class"]) == {"natural-language-processing", "computer-vision", "mlops", "other"}
    assert {"short_text", "nlp_cnn"} <= set(performance["slices"])
    for block in [performance["overall"], *performance["class"].values(), *performance["slices"].values()]:
        assert {"precision", "recall", "f1", "num_samples"} == set(block)


def test_unknown_filter_lists_the_valid_values(client, assert_problem):
    assert_problem(
        client.get("/performance?filter=everything"),
        400,
        "'everything' is not one of ['overall', 'class', 'slices'] - query parameter 'filter'",
    )


def test_unknown_query_parameter_is_refused(client, assert_problem):
    assert_problem(
        client.get("/performance?filtr=overall"), 400, "Extra query parameter(s) filtr not in spec"
    )

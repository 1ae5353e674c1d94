def test_all_args_of_the_serving_model(client, artifacts, assert_envelope):
    data = assert_envelope(client.get("/args"), path="/args")
    assert data == {"args": artifacts.args}
    assert data["args"]["ngram_max"] == 2


def test_one_arg(client, artifacts, assert_envelope):
    data = assert_envelope(client.get("/args/seed"), path="/args/seed")
    assert data == {"args": {"seed": artifacts.args["seed"]}}


def test_null_valued_arg_is_still_found(client, artifacts, assert_envelope):
    # `threshold` is null in the default args: present, not missing.
    data = assert_envelope(client.get("/args/threshold"))
    assert data == {"args": {"threshold": artifacts.args["threshold"]}}


def test_unknown_arg_is_a_404_that_names_it(client, assert_problem):
    known = (
        "known arguments: C, analyzer, class_weight, max_df, max_iter, min_df, ngram_max, seed, "
        "stop_words, sublinear_tf, test_size, threshold, val_size"
    )
    assert_problem(
        client.get("/args/learning_rate"),
        404,  # and says what exists
        f"unknown training argument 'learning_rate'; {known}",
    )


def test_arg_name_outside_the_pattern_is_a_400(client, assert_problem):
    assert_problem(
        client.get("/args/not-a-name"),
        400,
        "'not-a-name' does not match '^[A-Za-z_][A-Za-z0-9_]{0,63}$' - path parameter 'arg'",
    )

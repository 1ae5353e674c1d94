"""The pure function at the centre, without an engine: a batch as Arrow gives it, bad cells included."""

from __future__ import annotations

import pytest

from coe_template.model.predict import predict
from tests.coe_template.engines.conftest import NO_EXTRAS
from tests.conftest import MODEL

pa = pytest.importorskip("pyarrow", reason=NO_EXTRAS)
from coe_template.engines.table import LoadedVersion, cells, predict_table  # noqa: E402  (needs pyarrow)

TEXT = "Semantic segmentation of satellite images with a U-Net"


def test_invalid_utf8_in_an_arrow_string_column_is_a_status_not_an_error(artifacts):
    # Arrow does not check a string column's bytes (a Parquet file or a JSON line can hold these).
    texts = pa.array([TEXT.encode(), b"caf\xe9 reviews", b"  "], pa.binary()).view(pa.string())
    batch = pa.record_batch([pa.array(["a", "b", "c"]), texts], names=["id", "text"])
    table = predict_table(LoadedVersion(MODEL, 1, artifacts), cells(batch, "id"), cells(batch, "text"))
    rows = table.to_pylist()
    assert [(r["id"], r["status"], r["tag"]) for r in rows] == [
        ("a", "ok", predict([TEXT], artifacts)[0]["predicted_tag"]),
        ("b", "not utf-8", None),
        ("c", "no text", None),
    ]
    assert {
        k.removeprefix("probability_"): v for k, v in rows[0].items() if k.startswith("probability_")
    } == (predict([TEXT], artifacts)[0]["probabilities"])
    assert all(v is None for k, v in rows[1].items() if k.startswith("probability_"))

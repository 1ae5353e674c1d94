"""Prediction ids are UUIDv7: they sort by the millisecond they were made, and carry it."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from coe_template.ledger.ids import lowest_id, milliseconds, new_prediction_id

MILLISECONDS = st.integers(min_value=0, max_value=2**48 - 1)


@given(MILLISECONDS)
def test_an_id_is_a_version_7_uuid_carrying_its_millisecond(ms):
    made = uuid.UUID(new_prediction_id(ms))
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert milliseconds(str(made)) == ms


@given(MILLISECONDS.filter(lambda ms: ms < 2**48 - 1), MILLISECONDS)
def test_ids_sort_by_their_milliseconds_as_text(first, second):
    earlier, later = sorted([first, second])
    if earlier < later:
        assert new_prediction_id(earlier) < new_prediction_id(later)
    assert lowest_id(earlier) <= new_prediction_id(earlier) < lowest_id(earlier + 1)


def test_ids_made_in_the_same_millisecond_differ():
    assert len({new_prediction_id(1_700_000_000_000) for _ in range(1000)}) == 1000


def test_a_process_makes_ever_greater_ids_even_within_a_millisecond():
    made = [new_prediction_id() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all((uuid.UUID(each).version, uuid.UUID(each).variant) == (7, uuid.RFC_4122) for each in made)

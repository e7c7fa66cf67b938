"""Dynamic batching: which requests run as one, within the engines' profiles, split back."""

from __future__ import annotations

import numpy as np
import pytest

from hybridtrt.runtime.description import NodeArg
from hybridtrt.serve.batching import Item, concatenate, group, layout, row_limit, split

F32 = np.dtype(np.float32)
X = NodeArg("x", "tensor(float)", ["N", 3, "W"], F32)
Y = NodeArg("y", "tensor(float)", ["M", "T", 5], F32)


def profile(rows: int, width: int = 8) -> dict:
    return {"x": {"min": [1, 3, width], "opt": [1, 3, width], "max": [rows, 3, width]}}


def item(rows: int, width: int = 8, outputs: tuple[str, ...] | None = None) -> Item:
    return Item({"x": np.full((rows, 3, width), rows, np.float32)}, outputs)


def test_a_model_batches_only_with_a_dynamic_leading_dim_everywhere() -> None:
    assert layout([X], [Y]).batched
    fixed = NodeArg("y", "tensor(float)", [1, "T", 5], F32)
    assert not layout([X], [fixed]).batched
    assert not layout([NodeArg("x", "tensor(float)", [2, 3, "W"], F32)], [Y]).batched
    assert not layout([NodeArg("s", "tensor(float)", [], F32)], [Y]).batched
    assert row_limit(layout([X], [fixed]), item(1), 8) == 1
    two = layout([X, NodeArg("t", "tensor(float)", ["T"], F32)], [Y])
    assert two.batched
    unequal = Item({"x": np.zeros((2, 3, 8), np.float32), "t": np.zeros(5, np.float32)})
    assert row_limit(two, unequal, 8) == 1  # (the leading dims differ: not one batch dim)
    assert group(two, [unequal, unequal], 8) == [[0], [1]]


def test_rows_never_pass_the_profile_maxima_of_engines_reading_the_inputs() -> None:
    model = layout([X], [Y], [(["x"], [profile(4)]), (["inner"], [{"inner": {"max": [1]}}])])
    assert model.engines == ((("x",), (profile(4),)),)  # (engines fed from inside do not count)
    assert row_limit(model, item(1), 8) == 4
    assert row_limit(model, item(1), 2) == 2
    assert row_limit(model, item(1, width=9), 8) == 1  # in no profile: alone (and refused)
    two = layout([X], [Y], [(["x"], [profile(4), profile(16, width=9)])])
    assert row_limit(two, item(1, width=9), 8) == 8
    assert row_limit(two, item(1, width=8), 8) == 4


def test_requests_group_by_trailing_shape_and_outputs_up_to_the_limit() -> None:
    model = layout([X], [Y], [(["x"], [profile(4), profile(4, width=9)])])
    items = [item(1), item(2), item(1, width=9), item(1), item(1), item(1, outputs=("y",)),
             item(3), item(5)]
    assert group(model, items, 8) == [[0, 1, 3], [2], [4, 6], [5], [7]]  # (7: over the limit)
    assert group(model, items[:2], 2) == [[0], [1]]
    unbatched = layout([X], [NodeArg("y", "tensor(float)", [1], F32)])
    assert group(unbatched, items[:3], 8) == [[0], [1], [2]]


def test_split_undoes_concatenate_and_notices_outputs_that_did_not_batch() -> None:
    items = [item(1), item(2), item(3)]
    merged = concatenate(items)
    assert merged["x"].shape == (6, 3, 8)
    parts = split({"x2": merged["x"] * 2, "s": merged["x"].sum(axis=(1, 2))}, [1, 2, 3])
    assert parts is not None
    for part, one in zip(parts, items):
        np.testing.assert_array_equal(part["x2"], one.feeds["x"] * 2)
        np.testing.assert_array_equal(part["s"], one.feeds["x"].sum(axis=(1, 2)))
    assert split({"total": merged["x"].sum(axis=0)}, [1, 2, 3]) is None
    assert split({"scalar": np.float32(1)}, [1, 2, 3]) is None
    assert concatenate(items[:1])["x"] is items[0].feeds["x"]


@pytest.mark.parametrize("rows", [1, 4])
def test_item_rows_is_the_leading_dim(rows: int) -> None:
    assert item(rows).rows == rows


def test_a_0d_feed_counts_one_row_and_runs_alone() -> None:
    scalar_first = Item({"s": np.float32(2.0), "x": np.zeros((3, 3, 8), np.float32)})
    assert scalar_first.rows == 1 and Item({}).rows == 1
    model = layout([NodeArg("s", "tensor(float)", ["N"], F32), X], [Y])  # (the feed is wrong)
    assert row_limit(model, scalar_first, 8) == 1
    assert group(model, [scalar_first, scalar_first], 8) == [[0], [1]]

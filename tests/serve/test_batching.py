"""Dynamic batching: which requests run as one, within the engines' profiles, split back."""

from __future__ import annotations

import numpy as np
import pytest

from hybridtrt.runtime.description import NodeArg
from hybridtrt.errors import ConfigError
from hybridtrt.serve.batching import (Item, bucket, concatenate, group, layout, pad, row_limit,
                                      split, warmup_feeds)
from hybridtrt.serve.settings import ServeSettings

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


def test_a_run_goes_to_the_smallest_bucket_holding_it_within_the_limit() -> None:
    buckets = (1, 2, 4, 8)
    assert [bucket(rows, buckets, 8) for rows in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
    assert bucket(3, buckets, 3) == 3  # (no bucket within the profile's limit: as it is)
    assert bucket(9, buckets, 16) == 9 and bucket(2, (), 8) == 2


def test_padding_repeats_the_last_row_and_split_drops_it() -> None:
    x = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    padded = pad({"x": x}, 4)["x"]
    assert padded.shape == (4, 3, 8)
    np.testing.assert_array_equal(padded[:2], x)
    np.testing.assert_array_equal(padded[2], x[1])
    np.testing.assert_array_equal(padded[3], x[1])
    parts = split({"y": padded * 2}, [1, 1, 2])
    assert parts is not None and len(parts) == 3
    np.testing.assert_array_equal(parts[1]["y"], x[1:] * 2)


def test_warm_up_feeds_take_dynamic_dims_from_profiles_that_fix_them() -> None:
    fixed = layout([X], [Y], [(["x"], [profile(8, width=80)])])
    feeds = warmup_feeds(fixed, [X], 4)
    assert feeds is not None and feeds["x"].shape == (4, 3, 80) and feeds["x"].dtype == F32
    ranged = {"x": {"min": [1, 3, 16], "opt": [1, 3, 80], "max": [8, 3, 320]}}
    assert warmup_feeds(layout([X], [Y], [(["x"], [ranged])]), [X], 4) is None
    assert warmup_feeds(layout([X], [Y]), [X], 4) is None  # (no engine fixes W)
    static = NodeArg("x", "tensor(float)", ["N", 3, 8], F32)
    assert warmup_feeds(layout([static], [Y]), [static], 2)["x"].shape == (2, 3, 8)


def test_buckets_default_to_powers_of_two_on_a_gpu_only() -> None:
    assert ServeSettings("m", gpus_per_replica=1).buckets == (1, 2, 4, 8)
    assert ServeSettings("m", gpus_per_replica=1, max_batch_size=6).buckets == (1, 2, 4, 6)
    assert ServeSettings("m").buckets == ()
    assert ServeSettings("m", gpus_per_replica=1, batch_buckets=()).buckets == ()
    assert ServeSettings("m", batch_buckets=(4, 2, 4)).buckets == (2, 4)
    with pytest.raises(ConfigError, match=r"batch_buckets must lie in 1..max_batch_size \(8\), "
                                          r"got \[0, 9\]"):
        ServeSettings("m", batch_buckets=(0, 9))

"""The read API's fast merge of bucket rows equals decoding each row and merging it."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from k6mcp_bridge.aggregate.buckets import Bucket
from k6mcp_bridge.store.codec import Rows, bucket_row, row_bucket

values = st.lists(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e9, allow_nan=False),
        st.sampled_from([0.0, math.inf, -math.inf, 1e-9, 5e8]),
    ),
    min_size=0,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=8))
def test_rows_equal_decoding_and_merging_each(groups: list[list[float]]) -> None:
    rows = []
    for group in groups:
        bucket = Bucket("trend")
        bucket.add_values(group)
        rows.append(bucket_row(bucket))
    merged, slow = Rows("trend"), Bucket("trend")
    for row in rows:
        merged.add(row)
        slow.merge(row_bucket("trend", row))
    fast = merged.done()
    assert (fast.count, fast.min, fast.max, fast.nonzero) == (slow.count, slow.min, slow.max, 0)
    assert fast.sum == slow.sum or (math.isnan(fast.sum) and math.isnan(slow.sum))
    assert fast.sketch == slow.sketch
    if fast.count > 1:
        for p in (0.5, 0.95, 0.99):
            mine, theirs = fast.percentile(p), slow.percentile(p)
            assert mine == theirs or (math.isnan(mine) and math.isnan(theirs))


def test_rows_of_other_kinds_are_the_plain_merge() -> None:
    for kind, samples in (("counter", [1.0, 2.0]), ("rate", [0.0, 1.0, 1.0]), ("gauge", [3.0])):
        bucket = Bucket(kind)  # type: ignore[arg-type]
        bucket.add_values(samples)
        merged, slow = Rows(kind), Bucket(kind)  # type: ignore[arg-type]
        merged.add(bucket_row(bucket))
        slow.merge(row_bucket(kind, bucket_row(bucket)))  # type: ignore[arg-type]
        assert merged.done() == slow


def merged_both_ways(groups: list[list[float]]) -> tuple[Bucket, Bucket]:
    """Trend buckets of ``groups`` merged from their rows (``Rows``) and decoded then merged."""
    merged, slow = Rows("trend"), Bucket("trend")
    for values in groups:
        bucket = Bucket("trend")
        bucket.add_values(values)
        merged.add(bucket_row(bucket))
        slow.merge(row_bucket("trend", bucket_row(bucket)))
    return merged.done(), slow


def test_rows_with_big_counts_and_far_apart_keys() -> None:
    """Counts ≥ 128 (multi-byte varints: the general reader) and keys far below the first."""
    samples = [[20.0] * 1000 + [20.5] * 300, [0.001, 1e6, 3.0] * 50, [-5.0] * 200 + [7.0], [5e-7]]
    fast, slow = merged_both_ways(samples)
    assert fast.sketch == slow.sketch and fast.count == slow.count == 1652


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.2, 1.0, 1.05, 20.0, 21.0, 300.0, 9e4]), max_size=900),
        min_size=1,
        max_size=5,
    )
)
def test_rows_of_wide_buckets(groups: list[list[float]]) -> None:
    """Bins with counts ≥ 128 (two-byte varints), as 10 s buckets of a busy endpoint have."""
    fast, slow = merged_both_ways(groups)
    assert fast.sketch == slow.sketch and fast.count == slow.count

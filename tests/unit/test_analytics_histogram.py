"""The duration histogram the p90 is read from: which bucket a duration falls in, and the p90
interpolated within its bucket."""

from __future__ import annotations

from messaging_whatsapp.analytics.models import DURATION_EDGES, HISTOGRAM_BUCKETS
from messaging_whatsapp.analytics.rollup import bucket_of, empty_histogram, percentile


def test_a_duration_falls_in_the_bucket_up_to_its_edge() -> None:
    assert [bucket_of(seconds) for seconds in (0.0, 0.1, 0.4, 1.0, 1.01, 2.0, 4.0)] == [0, 0, 2, 3, 4, 4, 6]
    assert bucket_of(DURATION_EDGES[-1] + 1) == HISTOGRAM_BUCKETS - 1
    assert len(empty_histogram()) == HISTOGRAM_BUCKETS


def test_the_p90_lies_within_the_bucket_of_the_true_p90() -> None:
    durations = [0.5] * 80 + [4.0] * 15 + [100.0] * 5  # the true p90 is 4 s
    histogram = empty_histogram()
    for seconds in durations:
        histogram[bucket_of(seconds)] += 1
    p90 = percentile(histogram, 0.9)
    assert p90 is not None
    assert 3.0 < p90 <= 5.0
    assert percentile(empty_histogram(), 0.9) is None


def test_durations_past_the_last_edge_answer_that_edge() -> None:
    histogram = empty_histogram()
    histogram[-1] = 10
    assert percentile(histogram, 0.9) == DURATION_EDGES[-1]

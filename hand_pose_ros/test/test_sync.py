"""ApproximateTimeSynchronizer: message_filters' matching rule on explicit ns stamps."""

from __future__ import annotations

import numpy as np
import pytest

from hand_pose_ros.io.sync import ApproximateTimeSynchronizer, SyncError

MS = 1_000_000
PERIOD = 33_333_333  # 30 Hz


def _pairs(
    color: list[int],
    depth: list[int],
    *,
    depth_names: list[str] | None = None,
    slop_ns: int = 10 * MS,
    queue_size: int = 10,
) -> tuple[list[tuple[str, str]], ApproximateTimeSynchronizer[str]]:
    """Feed the two streams interleaved by stamp (colour first on ties), collect the pairs."""
    names = depth_names or [f"d{i}" for i in range(len(depth))]
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=queue_size, slop_ns=slop_ns
    )
    events = [(s, 0, f"c{i}") for i, s in enumerate(color)]
    events += [(s, 1, name) for s, name in zip(depth, names, strict=True)]
    pairs = []
    for stamp, index, name in sorted(events):
        matched = sync.add(index, stamp, name)
        if matched is not None:
            pairs.append((matched[0], matched[1]))
    return pairs, sync


def test_aligned_streams_all_match() -> None:
    stamps = [i * PERIOD for i in range(100)]
    pairs, sync = _pairs(stamps, stamps)
    assert pairs == [(f"c{i}", f"d{i}") for i in range(100)]
    assert sync.matched == 100
    assert sync.queued(0) == [] and sync.queued(1) == []
    assert sync.flush() == [] and sync.dropped == (0, 0)


def test_jittered_streams_all_match() -> None:
    rng = np.random.default_rng(3)
    color = [i * PERIOD + int(rng.integers(-5 * MS, 5 * MS + 1)) for i in range(300)]
    depth = [i * PERIOD + int(rng.integers(-5 * MS, 5 * MS + 1)) for i in range(300)]
    pairs, sync = _pairs(color, depth)
    assert sorted(pairs) == sorted((f"c{i}", f"d{i}") for i in range(300))
    assert sync.flush() == [] and sync.dropped == (0, 0)


def test_a_dropped_depth_frame_loses_exactly_its_colour_frame() -> None:
    rng = np.random.default_rng(5)
    color = [i * PERIOD for i in range(60)]
    depth = [i * PERIOD + int(rng.integers(-5 * MS, 5 * MS + 1)) for i in range(60)]
    del depth[17]
    names = [f"d{i}" for i in range(60) if i != 17]
    pairs, sync = _pairs(color, depth, depth_names=names)
    assert {c for c, _ in pairs} == {f"c{i}" for i in range(60)} - {"c17"}
    # Every pair is colour i with depth i: nothing shifted by one after the gap.
    assert all(c[1:] == d[1:] for c, d in pairs)
    assert len(pairs) == len(names)
    leftovers = sync.flush()
    assert [(index, item) for index, _, item in leftovers] == [(0, "c17")]
    assert sync.dropped == (1, 0)


def test_pairs_beyond_slop_never_match() -> None:
    color = [i * PERIOD for i in range(20)]
    depth = [s + 12 * MS for s in color]  # always 12 ms late, slop 10 ms
    pairs, sync = _pairs(color, depth)
    assert pairs == []
    assert len(sync.flush()) == sync.queue_size * 2


def test_a_spread_of_exactly_slop_does_not_match() -> None:
    # message_filters accepts candidates within slop but needs a spread strictly below it.
    assert _pairs([0], [10 * MS])[0] == []
    assert _pairs([0], [10 * MS - 1])[0] == [("c0", "d0")]


def test_the_nearest_candidate_wins() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=5, slop_ns=10 * MS
    )
    assert sync.add(1, 100 * MS - 8 * MS, "early") is None
    assert sync.add(1, 100 * MS + 3 * MS, "near") is None
    assert sync.add(0, 100 * MS, "color") == ("color", "near")
    assert sync.queued(1) == [92 * MS]  # the other candidate stays for a later colour frame


def test_ties_go_to_the_earlier_arrival_and_a_replacement_keeps_its_place() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=5, slop_ns=10 * MS
    )
    sync.add(1, 103 * MS, "after")
    sync.add(1, 97 * MS, "before")
    sync.add(1, 103 * MS, "after, resent")  # replaces "after" but stays first in line
    assert sync.add(0, 100 * MS, "color") == ("color", "after, resent")


def test_unmatched_messages_stay_and_can_match_later() -> None:
    # As in message_filters' Python implementation: a match does not flush older messages.
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=5, slop_ns=10 * MS
    )
    sync.add(0, 0, "c0")
    sync.add(0, PERIOD, "c1")
    assert sync.add(1, PERIOD, "d1") == ("c1", "d1")
    assert sync.queued(0) == [0]
    assert sync.add(1, 2 * MS, "late d0") == ("c0", "late d0")


def test_queue_size_is_respected_and_evictions_are_reported() -> None:
    evicted: list[tuple[int, int, str]] = []
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=3, slop_ns=10 * MS, on_drop=lambda i, s, item: evicted.append((i, s, item))
    )
    for i in range(8):
        sync.add(0, i * PERIOD, f"c{i}")
        assert len(sync.queued(0)) == min(i + 1, 3)
    assert sync.queued(0) == [5 * PERIOD, 6 * PERIOD, 7 * PERIOD]
    assert evicted == [(0, i * PERIOD, f"c{i}") for i in range(5)]
    assert sync.dropped == (5, 0)
    # An evicted message can no longer match.
    assert sync.add(1, 0, "d0") is None
    assert sync.add(1, 7 * PERIOD, "d7") == ("c7", "d7")


def test_same_stamp_replaces_and_counts_a_drop() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=3, slop_ns=10 * MS
    )
    sync.add(0, 5, "first")
    sync.add(0, 5, "second")
    assert sync.dropped == (1, 0)
    assert sync.add(1, 5, "depth") == ("second", "depth")


def test_three_inputs_and_callback() -> None:
    got: list[tuple[str, ...]] = []
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        3, queue_size=5, slop_ns=10 * MS, callback=lambda *items: got.append(items)
    )
    # Pairwise every two are within slop of the newest, but 0 and 2 are 12 ms apart.
    assert sync.add(0, 0, "a0") is None
    assert sync.add(1, 6 * MS, "b0") is None
    assert sync.add(2, 12 * MS, "c_far") is None
    assert sync.add(2, 4 * MS, "c0") == ("a0", "b0", "c0")
    assert got == [("a0", "b0", "c0")]
    assert sync.queued(2) == [12 * MS]
    # Arrival order does not matter: the set completes on whichever input comes last.
    assert sync.add(1, PERIOD + 1 * MS, "b1") is None
    assert sync.add(2, PERIOD - 2 * MS, "c1") is None
    assert sync.add(0, PERIOD, "a1") == ("a1", "b1", "c1")
    assert got[-1] == ("a1", "b1", "c1")


def test_drop_unmatchable_retires_only_hopeless_messages() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=10, slop_ns=10 * MS
    )
    sync.add(0, 0, "c0")            # its depth was lost
    sync.add(0, PERIOD, "c1")       # its depth is still to come
    assert sync.drop_unmatchable() == []  # no depth seen yet: nothing is known
    sync.add(1, PERIOD - 4 * MS, "d_other")  # newest depth is 29 ms: c0 is out of reach
    # d_other matched c1 (4 ms); c0 cannot match any later depth.
    assert sync.queued(0) == [0]
    assert sync.drop_unmatchable() == [(0, 0, "c0")]
    assert sync.dropped == (1, 0)


def test_drop_unmatchable_keeps_a_message_with_a_queued_partner() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        3, queue_size=10, slop_ns=10 * MS
    )
    sync.add(0, 0, "a")
    sync.add(1, 2 * MS, "b")
    sync.add(1, 50 * MS, "b_later")  # input 1 is far ahead, but "b" can still pair with "a"
    assert sync.drop_unmatchable() == []
    assert sync.add(2, 1 * MS, "c") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("num_inputs", "queue_size", "slop_ns", "message"),
    [
        (1, 5, 1, "num_inputs must be at least 2, got 1"),
        (2, 0, 1, "queue_size must be at least 1, got 0"),
        (2, 5, 0, "slop_ns must be > 0"),
        (2, 5, -3, "slop_ns must be > 0"),
    ],
)
def test_bad_options(num_inputs: int, queue_size: int, slop_ns: int, message: str) -> None:
    with pytest.raises(SyncError, match=message):
        ApproximateTimeSynchronizer(num_inputs, queue_size=queue_size, slop_ns=slop_ns)


def test_bad_input_index() -> None:
    sync: ApproximateTimeSynchronizer[str] = ApproximateTimeSynchronizer(
        2, queue_size=5, slop_ns=MS
    )
    with pytest.raises(SyncError, match=r"input index 2 out of range 0\.\.1"):
        sync.add(2, 0, "x")

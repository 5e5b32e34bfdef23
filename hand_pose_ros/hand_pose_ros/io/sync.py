"""Approximate time synchronisation of several message streams, without ROS.

The matching rule is that of the Python ``message_filters.ApproximateTimeSynchronizer``
(ROS 2), so bag mode pairs colour and depth exactly as the live node does:

* every input has a queue keyed by stamp; a message with a stamp already queued on that
  input replaces the old one, and the oldest stamp is evicted when a queue holds more than
  ``queue_size`` messages;
* when a message arrives, each *other* input contributes its queued stamps that lie within
  ``slop`` of the new stamp, nearest first; if an input has none, nothing happens;
* the combinations are tried in that order (the nearest on every input first) and the first
  whose spread (newest minus oldest stamp) is strictly below ``slop`` is emitted and its
  messages leave the queues. Older unmatched messages stay queued (they may still match a
  late message) until evicted.

Differences, all additions: stamps are integer nanoseconds given by the caller (no clock is
read and no header is looked at), messages that leave without a match are counted per input
(``dropped``) and can be reported to ``on_drop``, and ``drop_unmatchable`` / ``flush`` let an
offline reader retire messages that can no longer match.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

#: ``on_drop(input_index, stamp_ns, item)``
DropCallback = Callable[[int, int, T], None]


class SyncError(ValueError):
    """Bad synchroniser options or a message for an input that does not exist."""


class ApproximateTimeSynchronizer(Generic[T]):
    """Groups one message per input whose stamps lie within ``slop_ns`` of each other.

    Args:
        num_inputs: number of streams (at least 2).
        queue_size: how many unmatched messages each input keeps (at least 1).
        slop_ns: the largest allowed spread of stamps in a set, nanoseconds (> 0). As in
            message_filters, a set matches only when its spread is strictly below it.
        callback: called as ``callback(item_0, ..., item_n-1)`` for every matched set.
        on_drop: called as ``on_drop(input_index, stamp_ns, item)`` for every message that
            leaves a queue without being matched (evicted, replaced, retired or flushed).

    Thread-safe: ``add`` may be called from several threads; callbacks run outside the lock,
    in the order the sets were matched.
    """

    def __init__(
        self,
        num_inputs: int,
        *,
        queue_size: int,
        slop_ns: int,
        callback: Callable[..., object] | None = None,
        on_drop: DropCallback[T] | None = None,
    ) -> None:
        if num_inputs < 2:
            raise SyncError(f"num_inputs must be at least 2, got {num_inputs}")
        if queue_size < 1:
            raise SyncError(f"queue_size must be at least 1, got {queue_size}")
        if slop_ns <= 0:
            raise SyncError(
                f"slop_ns must be > 0 (a set matches when its spread is strictly below it), "
                f"got {slop_ns}"
            )
        self._queue_size = queue_size
        self._slop_ns = int(slop_ns)
        self._callback = callback
        self._on_drop = on_drop
        # Insertion-ordered dicts: stamp -> item, as in message_filters.
        self._queues: list[dict[int, T]] = [{} for _ in range(num_inputs)]
        self._newest: list[int | None] = [None] * num_inputs
        self._dropped = [0] * num_inputs
        self._matched = 0
        self._lock = threading.Lock()

    @property
    def num_inputs(self) -> int:
        return len(self._queues)

    @property
    def slop_ns(self) -> int:
        return self._slop_ns

    @property
    def queue_size(self) -> int:
        return self._queue_size

    @property
    def dropped(self) -> tuple[int, ...]:
        """Messages per input that left without a match so far."""
        return tuple(self._dropped)

    @property
    def matched(self) -> int:
        """Number of sets emitted so far."""
        return self._matched

    def queued(self, index: int) -> list[int]:
        """The stamps (ns) queued on input ``index``, oldest first."""
        self._check_index(index)
        with self._lock:
            return sorted(self._queues[index])

    def add(self, index: int, stamp_ns: int, item: T) -> tuple[T, ...] | None:
        """Offer ``item`` with stamp ``stamp_ns`` (ns) on input ``index``.

        Returns:
            the matched set (one item per input, in input order) if this message completed
            one, else None. The callback, if any, is called with the same set.
        """
        self._check_index(index)
        stamp_ns = int(stamp_ns)
        dropped: list[tuple[int, int, T]] = []
        with self._lock:
            queue = self._queues[index]
            if stamp_ns in queue:
                # Replaced in place: the stamp keeps its place in arrival order, which decides
                # ties between equally near candidates, as upstream.
                dropped.append((index, stamp_ns, queue[stamp_ns]))
            queue[stamp_ns] = item
            newest = self._newest[index]
            self._newest[index] = stamp_ns if newest is None else max(newest, stamp_ns)
            while len(queue) > self._queue_size:
                oldest = min(queue)
                dropped.append((index, oldest, queue.pop(oldest)))
            matched = self._match(index, stamp_ns) if stamp_ns in queue else None
            self._count(dropped)
        self._report(dropped)
        if matched is not None and self._callback is not None:
            self._callback(*matched)
        return matched

    def _match(self, index: int, stamp_ns: int) -> tuple[T, ...] | None:
        """Find and remove the first set that contains the new message; lock held."""
        candidates: list[list[int]] = []
        for other, queue in enumerate(self._queues):
            if other == index:
                candidates.append([stamp_ns])
                continue
            near = [s for s in queue if abs(s - stamp_ns) <= self._slop_ns]
            if not near:
                return None
            # Stable sort: ties keep queue (arrival) order, as sorted() does upstream.
            candidates.append(sorted(near, key=lambda s: abs(s - stamp_ns)))
        for stamps in itertools.product(*candidates):
            if max(stamps) - min(stamps) < self._slop_ns:
                self._matched += 1
                return tuple(q.pop(s) for q, s in zip(self._queues, stamps, strict=True))
        return None

    def drop_unmatchable(self) -> list[tuple[int, int, T]]:
        """Retire queued messages that can no longer match if every input's stamps only grow.

        A message with stamp ``t`` cannot match once some other input has no queued message
        within ``slop`` of ``t`` and its newest stamp is already ``t + slop`` or later (its
        future messages, if stamps never go back in time, are too late as well). This is not
        in message_filters (a live node cannot know that streams are ordered); a bag reader
        uses it so that a frame whose partner was lost is settled promptly instead of after
        ``queue_size`` more misses.

        Returns:
            ``(input_index, stamp_ns, item)`` for every retired message, oldest first.
        """
        dropped: list[tuple[int, int, T]] = []
        with self._lock:
            retire = [
                (index, stamp)
                for index, queue in enumerate(self._queues)
                for stamp in queue
                if any(self._out_of_reach(stamp, other) for other in range(len(self._queues))
                       if other != index)
            ]
            for index, stamp in retire:
                dropped.append((index, stamp, self._queues[index].pop(stamp)))
            dropped.sort(key=lambda d: (d[1], d[0]))
            self._count(dropped)
        self._report(dropped)
        return dropped

    def _out_of_reach(self, stamp_ns: int, other: int) -> bool:
        """True if input ``other`` can never give ``stamp_ns`` a partner; lock held."""
        newest = self._newest[other]
        if newest is None or newest - stamp_ns < self._slop_ns:
            return False
        return all(abs(s - stamp_ns) >= self._slop_ns for s in self._queues[other])

    def flush(self) -> list[tuple[int, int, T]]:
        """Retire every queued message (end of stream); returns them as ``drop_unmatchable``."""
        with self._lock:
            dropped = [(i, s, item) for i, q in enumerate(self._queues) for s, item in q.items()]
            for queue in self._queues:
                queue.clear()
            dropped.sort(key=lambda d: (d[1], d[0]))
            self._count(dropped)
        self._report(dropped)
        return dropped

    def _count(self, dropped: Sequence[tuple[int, int, T]]) -> None:
        for index, _, _ in dropped:
            self._dropped[index] += 1

    def _report(self, dropped: Sequence[tuple[int, int, T]]) -> None:
        if self._on_drop is not None:
            for index, stamp, item in dropped:
                self._on_drop(index, stamp, item)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._queues):
            raise SyncError(f"input index {index} out of range 0..{len(self._queues) - 1}")

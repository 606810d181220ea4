"""One backend instance's busy intervals, sorted by start, in buckets of time.

The construction inserts and removes intervals all along a run (a request's candidates
are tried and taken back thousands of times). In one flat sorted list each edit moves
every later entry: an hour of frames made every request cost seconds. Here intervals are
kept per bucket of ``BUCKET_US`` by their start, so an edit moves only its bucket's
entries; queries walk from the bucket of their time onward. Order and ties are those of
one sorted list (a new interval goes before equal starts), so the construction's
answers do not change.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

BUCKET_US = 1_000_000  # a bucket holds the intervals starting in one second


class Lane:
    """Disjoint busy intervals (start, end, owner), sorted by start."""

    def __init__(self) -> None:
        self.keys: list[int] = []  # non-empty buckets, sorted
        self.buckets: dict[int, tuple[list[int], list[int], list[int]]] = {}

    def insert(self, start: int, end: int, owner: int) -> None:
        key = start // BUCKET_US
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = ([], [], [])
            bisect.insort(self.keys, key)
        starts, ends, owners = bucket
        i = bisect.bisect_left(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)
        owners.insert(i, owner)

    def remove(self, start: int, owner: int) -> None:
        key = start // BUCKET_US
        starts, ends, owners = self.buckets[key]
        i = bisect.bisect_left(starts, start)
        while owners[i] != owner:
            i += 1
        del starts[i], ends[i], owners[i]
        if not starts:
            del self.buckets[key]
            del self.keys[bisect.bisect_left(self.keys, key)]

    def last_before(self, at: int) -> tuple[int, int, int] | None:
        """The last interval starting before ``at`` (None: there is none)."""
        k = bisect.bisect_right(self.keys, at // BUCKET_US) - 1
        while k >= 0:
            starts, ends, owners = self.buckets[self.keys[k]]
            i = bisect.bisect_left(starts, at) - 1
            if i >= 0:
                return starts[i], ends[i], owners[i]
            k -= 1
        return None

    def scan(self, at: int) -> Iterator[tuple[int, int, int]]:
        """Intervals in start order from the last one starting at or before ``at`` (or
        from the first, when none does)."""
        keys = self.keys
        k = bisect.bisect_right(keys, at // BUCKET_US) - 1
        i = -1
        while k >= 0:  # the last interval starting at or before ``at``
            i = bisect.bisect_right(self.buckets[keys[k]][0], at) - 1
            if i >= 0:
                break
            k -= 1
        k, i = (0, 0) if k < 0 else (k, i)
        while k < len(keys):
            starts, ends, owners = self.buckets[keys[k]]
            while i < len(starts):
                yield starts[i], ends[i], owners[i]
                i += 1
            k, i = k + 1, 0

    def __len__(self) -> int:
        return sum(len(b[0]) for b in self.buckets.values())

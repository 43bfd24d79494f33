"""Engagements applied at their target in event-time order across every source partition.

An engagement travels from its actor's partition (the source: an input topic partition) to its
target's partition through the repartition topic. Each worker aligns only the input partitions
it owns (`pipeline.aligner`), so the sources of one target partition advance at the pace of
whichever worker owns them. In a steady run the workers stay close; after a failover they do
not: while one worker is dead, recovering or catching up, the others run ahead by hours or days
of event time, and their engagements reach a target before the ones the slow sources still owe
it. The model tolerates lateness only up to its lateness horizon (`open_days`: an engagement for
a day already folded counts as regular mass, not burst), so such runs scored hundreds of users
differently from `influence replay`.

Flink solves this with watermarks, and so does this module: every source announces how far in
event time it has sent its engagements (`Progress`), and a target partition releases a held
engagement only when every source has either passed its time or has nothing more to send (idle:
its owner reads nothing more for it from the broker). Engagements of one source keep their order
(the target's offset guard relies on it). The result is the order `influence replay` applies,
whatever the number of workers and whatever failed, give or take engagements of equal time.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Source = tuple[int, int]
"""An input partition as (input topic index, partition): the origin of an engagement."""


class Progress(NamedTuple):
    """How far a source has sent its engagements: `time` (None: nothing sent yet), `idle`.

    `end`, when set, is the offset up to which an idle source had read its partition. Idle
    only means "the broker held nothing more when I last looked": in a live stream a producer
    may append to the source an event older than the ones another partition delivers next.
    Such a claim is trusted only while the broker confirms that nothing was appended past
    `end` (`SourceMerge.confirm`), checked after the held items arrived, so causally after
    anything produced before them."""

    time: int | None
    idle: bool
    end: int | None = None


@dataclass(slots=True)
class SourceMerge(Generic[Item]):
    """One target partition's held engagements, released oldest first across all sources."""

    sources: frozenset[Source]
    """Every source that may send engagements here: all partitions of all input topics."""
    progress: dict[Source, Progress] = field(default_factory=dict)
    queues: dict[Source, deque[tuple[int, Item]]] = field(default_factory=dict)
    held: int = 0
    max_wait_s: float = float("inf")
    """How long (wall clock) the oldest held engagement waits for silent sources before they
    stop holding it back, until they announce again: a source that never speaks (its owner
    gone, its announcement lost) must not stall a partition for good."""
    clock: Callable[[], float] = time.monotonic
    ignored: set[Source] = field(default_factory=set)
    blocked_since: float | None = None
    ends: dict[Source, int] = field(default_factory=dict)
    """The sources' end offsets on the broker, as last confirmed (`confirm`)."""

    def announce(
        self, source: Source, time: int | None, idle: bool, end: int | None = None
    ) -> None:
        """A source's progress. Times only move forward: after a failover the new owner
        re-sends from the committed offset, and what the old owner announced still holds (its
        engagements up to that time are on the topic already)."""
        known = self.progress.get(source)
        if known is not None and known.time is not None and (time is None or time < known.time):
            time = known.time
        self.progress[source] = Progress(time, idle, end if idle else None)
        self.ignored.discard(source)

    def idle_claims(self) -> list[Source]:
        """Sources whose idle claim waits on the broker's end offsets (`Progress.end`)."""
        return [s for s, known in self.progress.items() if known.idle and known.end is not None]

    def confirm(self, ends: Mapping[Source, int]) -> None:
        """The sources' end offsets, read from the broker after the held items arrived."""
        self.ends.update(ends)

    def unconfirm(self) -> None:
        """Items arrived after the last `confirm`: its end offsets say nothing about them."""
        self.ends.clear()

    def is_idle(self, source: Source) -> bool:
        """Idle, and (for a claim with an `end`) nothing appended past it since."""
        known = self.progress.get(source)
        if known is None or not known.idle:
            return False
        return known.end is None or self.ends.get(source, known.end + 1) <= known.end

    def add(self, source: Source, ts: int, item: Item) -> None:
        queue = self.queues.get(source)
        if queue is None:
            queue = self.queues[source] = deque()
        queue.append((ts, item))
        self.held += 1

    def drop_held(self) -> None:
        """Lets the held engagements go (they will be delivered again) and keeps what the
        sources announced: that stays true, and a quiet source will not say it again."""
        self.queues.clear()
        self.held = 0

    def _frontier(self) -> float:
        """The latest time every source without a held engagement has passed."""
        frontier = float("inf")
        queues, progress = self.queues, self.progress
        for source in self.sources:
            if queues.get(source) or source in self.ignored:
                continue
            known = progress.get(source)
            if known is None:
                return float("-inf")
            if self.is_idle(source):
                continue
            if known.time is None:
                return float("-inf")
            frontier = min(frontier, known.time)
        return frontier

    def release(self, limit: int) -> list[Item]:
        """Up to `limit` held engagements that may be applied now, oldest first (ties: by
        source); each source's engagements in the order they arrived."""
        out: list[Item] = []
        if not self.held:
            self.blocked_since = None
            return out
        queues = self.queues
        heads = [(queue[0][0], source) for source, queue in queues.items() if queue]
        heapq.heapify(heads)
        frontier = self._frontier()
        if heads[0][0] > frontier and self._waited_long_enough():
            frontier = self._frontier()
        while heads and len(out) < limit:
            ts, source = heads[0]
            if ts > frontier:
                break
            queue = queues[source]
            out.append(queue.popleft()[1])
            if queue:
                heapq.heapreplace(heads, (queue[0][0], source))
            else:
                heapq.heappop(heads)
                frontier = self._frontier()  # this source now constrains by its progress
        self.held -= len(out)
        if out:
            self.blocked_since = None
        return out

    def _waited_long_enough(self) -> bool:
        """The oldest engagement is blocked: once for `max_wait_s`, the sources holding it
        back are ignored until they announce again (True then)."""
        now = self.clock()
        if self.blocked_since is None:
            self.blocked_since = now
            return False
        if now - self.blocked_since < self.max_wait_s:
            return False
        silent = self.waiting_on()
        log.warning(
            "sources %s held engagements back %.0fs without a word: not waiting for them",
            silent,
            now - self.blocked_since,
        )
        self.ignored.update(silent)
        self.blocked_since = None
        return True

    def low_water(self) -> float:
        """The earliest event time this merge may still release: its oldest held item, or the
        least progress of a source with nothing held (-inf: a source has not spoken; inf:
        every source is idle or ignored and nothing is held). `pipeline.forward` holds a
        worker's own inputs back to it, so a forwarded input is never applied after them."""
        heads = [queue[0][0] for queue in self.queues.values() if queue]
        return min([self._frontier(), *heads])

    def waiting_on(self) -> list[Source]:
        """Sources holding the oldest engagement back (for logs and metrics)."""
        heads = [queue[0][0] for queue in self.queues.values() if queue]
        if not heads:
            return []
        oldest = min(heads)
        return sorted(
            source
            for source in self.sources
            if not self.queues.get(source) and not self._passed(source, oldest)
        )

    def _passed(self, source: Source, ts: int) -> bool:
        known = self.progress.get(source)
        if known is None:
            return False
        return self.is_idle(source) or (known.time is not None and known.time >= ts)


def encode_progress(progress: Iterable[tuple[Source, Progress]]) -> list[list[object]]:
    """Progress rows as the repartition and forward messages carry them."""
    return [[*source, *Progress(*known)] for source, known in progress]


def decode_progress(rows: Iterable[Sequence[object]]) -> list[tuple[Source, Progress]]:
    """Progress rows read back; TypeError or ValueError on a malformed row."""
    progress: list[tuple[Source, Progress]] = []
    for topic, partition, at, idle, *rest in rows:
        if not isinstance(topic, int) or not isinstance(partition, int):
            raise TypeError("a progress row's source must be two integers")
        if at is not None and not isinstance(at, int):
            raise TypeError("a progress row's time must be an integer or null")
        end = rest[0] if rest else None  # rows of workers before `Progress.end` have four
        if len(rest) > 1 or (end is not None and not isinstance(end, int)):
            raise TypeError("a progress row's end must be an integer or null")
        progress.append(((topic, partition), Progress(at, bool(idle), end)))
    return progress


def all_sources(input_topics: int, partitions: int) -> frozenset[Source]:
    return frozenset((topic, p) for topic in range(input_topics) for p in range(partitions))

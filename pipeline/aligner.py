"""Releases input events in event-time order across the input partitions a worker owns.

Kafka orders messages only within a partition, and a consumer catching up on a backlog gets
them a fetch at a time: a whole day of one partition may arrive before any of the next. The
model tolerates lateness up to `open_days` (scoring.receiving), so an unaligned backfill of a
sparse history would score differently from the same history replayed in order. Like Kafka
Streams' task timestamp synchronisation, events are held per partition and the oldest head is
released only while every other partition either has an event waiting or has nothing more to
give (the broker holds nothing newer than what reached the aligner). A partition that stays
behind longer than `max_wait_s` (wall clock) stops holding the others back until its next event
arrives, so a fetch that never comes delays the others by at most that much (a partition the
broker has nothing more for is not waited for at all). Kafka Streams, too, waits for a
partition that has records on the broker (KIP-695): giving up applies them after later ones.

A partition may instead have a *watermark* (`pipeline.forward`: a forward-topic partition,
whose events come from other workers): empty, it holds back only events later than its
watermark, the earliest time it may still deliver; an infinite watermark is idle. A watermark
partition is waited for `watermark_max_wait_s`, not `max_wait_s`: its events come through
another worker's batch, a send and a fetch, which under load take longer than the second
that a broker partition is given, and giving up on it sooner applied an actor's own later
inputs before its forwarded earlier ones (its watermark already gives up on a silent
forwarder after `merge_max_wait_s`, `pipeline.merge`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Partition = Hashable


@dataclass(slots=True)
class _Queue(Generic[Item]):
    items: deque[tuple[int, Item]] = field(default_factory=deque)
    last_offset: int = -1


class EventTimeAligner(Generic[Item]):
    """Per-partition queues merged by event time (`ts`), the oldest head first."""

    def __init__(
        self,
        has_more: Callable[[Partition, int], bool],
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        watermark: Callable[[Partition], float | None] = lambda _: None,
        watermark_max_wait_s: float | None = None,
    ) -> None:
        """`has_more(partition, last_offset_seen)`: does the broker hold more for it?
        `watermark(partition)`: None for a broker partition, else its watermark (above);
        `watermark_max_wait_s`: how long one holds the others back (default `max_wait_s`)."""
        self.has_more = has_more
        self.watermark = watermark
        self.max_wait_s = max_wait_s
        self.watermark_max_wait_s = (
            max_wait_s if watermark_max_wait_s is None else watermark_max_wait_s
        )
        self.clock = clock
        self.queues: dict[Partition, _Queue[Item]] = {}
        self.waiting_since: float | None = None
        self.ignored: set[Partition] = set()
        """Partitions that held the others back for `max_wait_s`: ignored until they deliver."""

    def __len__(self) -> int:
        return sum(len(queue.items) for queue in self.queues.values())

    def track(self, partitions: list[Partition]) -> None:
        """Partitions assigned to this worker: each holds the others back until it is seen
        to have nothing more (a backlog's first fetch may bring one partition's events only)."""
        for partition in partitions:
            self.queues.setdefault(partition, _Queue())

    def add(self, partition: Partition, offset: int, ts: int, item: Item) -> None:
        queue = self.queues.get(partition)
        if queue is None:
            queue = self.queues[partition] = _Queue()
        queue.items.append((ts, item))
        queue.last_offset = max(queue.last_offset, offset)
        self.ignored.discard(partition)

    def follow(self, partition: Partition, offset: int, item: Item) -> bool:
        """Queues `item` behind the partition's held events, whatever its own time (a refused
        input has none): acknowledged before them, it would let the partition's committed
        offset pass them. False when the partition holds nothing (the item may go at once)."""
        queue = self.queues.get(partition)
        if queue is None:
            return False
        queue.last_offset = max(queue.last_offset, offset)  # seen: not "more on the broker"
        if not queue.items:
            return False
        queue.items.append((queue.items[-1][0], item))
        return True

    def release(self, limit: int | None = None) -> list[Item]:
        """Items that may go now (at most `limit`), oldest event time first (ties: partition
        order). A caller with a large backlog takes it in slices, so that no single step keeps
        the event loop (heartbeats, fetches, timers) waiting."""
        out: list[Item] = []
        queues = self.queues
        marks = {p: self.watermark(p) for p in queues}  # fixed while this call releases
        while limit is None or len(out) < limit:
            heads = [
                (queue.items[0][0], i, p)
                for i, (p, queue) in enumerate(queues.items())
                if queue.items
            ]
            if not heads:
                break
            ts, _, partition = min(heads)
            if self._blocked(ts, marks):
                break
            out.append(queues[partition].items.popleft()[1])
        return out

    def head_time(self, partition: Partition) -> int | None:
        """The event time of the partition's oldest held item, if it holds one."""
        queue = self.queues.get(partition)
        if queue is None or not queue.items:
            return None
        return queue.items[0][0]

    def idle(self, partition: Partition) -> bool:
        """Nothing held for `partition` and nothing more to come for it (broker or watermark)."""
        queue = self.queues.get(partition)
        if queue is None:
            return False
        if queue.items:
            return False
        mark = self.watermark(partition)
        if mark is not None:
            return mark == float("inf")
        return not self.has_more(partition, queue.last_offset)

    def _lagging(self, ts: int, marks: dict[Partition, float | None]) -> list[Partition]:
        """Empty partitions that may still deliver something older than `ts`."""
        lagging = []
        for partition, queue in self.queues.items():
            if queue.items or partition in self.ignored:
                continue
            mark = marks.get(partition)
            if partition not in marks:
                mark = marks[partition] = self.watermark(partition)
            if mark is None:
                if self.has_more(partition, queue.last_offset):
                    lagging.append(partition)
            elif mark < ts:
                lagging.append(partition)
        return lagging

    def _blocked(self, ts: int, marks: dict[Partition, float | None]) -> bool:
        """An empty partition that the broker still has events for (or whose watermark is
        behind `ts`, the oldest head) holds the others back."""
        lagging = self._lagging(ts, marks)
        if not lagging:
            self.waiting_since = None
            return False
        now = self.clock()
        if self.waiting_since is None:
            self.waiting_since = now
        patience = max(
            self.max_wait_s if marks.get(p) is None else self.watermark_max_wait_s for p in lagging
        )
        if now - self.waiting_since < patience:
            return True
        log.info(
            "input partitions %s held the others back %.1fs: not waiting for them",
            lagging,
            self.max_wait_s,
        )
        self.ignored.update(lagging)
        self.waiting_since = None
        return False

    def drop(self) -> None:
        """A seek: everything held will be delivered again. The partitions stay tracked (one
        with nothing more to deliver is idle, not unknown), and what each delivered is
        forgotten, so none counts as caught up before its records come again."""
        for queue in self.queues.values():
            queue.items.clear()
            queue.last_offset = -1
        self.ignored.clear()
        self.waiting_since = None

    def forget(self) -> list[Item]:
        """Partitions moved: drops and returns everything held (it will be redelivered)."""
        held = [item for queue in self.queues.values() for _, item in queue.items]
        self.queues.clear()
        self.ignored.clear()
        self.waiting_since = None
        return held

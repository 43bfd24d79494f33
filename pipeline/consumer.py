"""Faust's aiokafka consumer, with two fixes that make at-least-once hold across a seek.

The fault tests lost events after a plain restart (3 runs in 4): a worker read everything,
yet its committed offsets stayed hundreds of messages behind for minutes, and once that was
fixed, an event was missing from the final scores. Both come from Faust's fetch loop
(`Consumer._drain_messages`) around the seek to the committed offsets that ends table
recovery:

1. **A seek in the middle of a delivered batch.** The seek awaits the consumer thread; the
   fetch loop meanwhile delivers records fetched before it. The streams drop those (flow
   control is still suspended), the seek sets each read offset back to the committed one, and
   the loop then goes on with the same stale batch: the record in flight writes its offset
   over the seek's, the next ones look like a jump and are recorded as a "gap", and the records
   the broker sends again from the committed offset look older than the read offset and are
   skipped. Records never processed counted as done. And a partition without a committed
   offset is not moved by that seek at all (aiokafka seeks only to committed offsets above 0),
   so what the streams dropped there was gone (and so was what a rebalance took from the
   streams' buffers and the pipeline's holds, and what Faust's fetch loop itself drops while
   recovery runs). Here a batch stops at the first record after a seek and the seek is
   repeated with nothing in flight, and partitions without a committed offset go back to where
   the group starts them (the earliest offset, or `worker --from`'s): everything is delivered
   again (what was processed already is recognised by its offset, `pipeline.steps`).
2. **Duplicate offsets end the commit.** Faust commits the end of the first run of consecutive
   acknowledged offsets (`Consumer._new_offset`), a list in which a gap's offsets (its last one
   is a delivered record) and redelivered records can appear twice; each repeat ends the run,
   so a commit advanced past one repeat at a time. Here the offsets are a set. Known upstream:
   robinhood/faust#625, faust-streaming/faust#312. The rest of the rule is Faust's, including
   its tolerance of a one-offset hole at the head (a transaction marker at the committed
   offset).
3. **Offsets that are never delivered stall the commit (exactly-once).** Under
   read_committed, aiokafka skips an aborted transaction's records and every transaction
   marker: the offsets of a partition's records have holes, of one offset per marker and of
   thousands after a `kill -9` (the dead worker's open transactions, aborted). Faust's fetch
   loop records a hole between two records it reads as a "gap" (`_gap`), but not after a seek
   to offset 0 (no read offset: a partition nobody had committed, rewound to its start) nor
   after a record at offset 0, and never after the last record fetched; and the gap it
   records includes the record after the hole, which then counts as acknowledged before it
   is (a crash after that commit loses it). The commit then waited forever at the hole (a
   repartition partition stuck 4,029 messages behind after a kill under exactly-once), or
   passed a record still being processed. Here the holes come from aiokafka's fetch itself
   (`_getmany`): between its position before a fetch and each partition's first record,
   between two records, and between the last one and its position after the fetch, every
   offset is one the fetch went past without returning it (`skipped`), and commits pass those
   alone; Faust's gaps are dropped.

This is the consumer part of `pipeline.faust_compat` (the one place the pipeline touches
Faust's private names): the methods it overrides and the private fields it reads are listed
there, and `tests/test_faust_compat.py` checks them against the installed Faust.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from types import MappingProxyType
from typing import Any, cast
from weakref import WeakKeyDictionary

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message
from intervaltree import IntervalTree

log = logging.getLogger(__name__)


def skipped_by_fetch(
    before: Mapping[TP, int], records: Mapping[TP, Any], after: Mapping[TP, int]
) -> dict[TP, list[tuple[int, int]]]:
    """The offsets (half-open ranges) one fetch went past without returning them: from each
    partition's position `before` to its first record, between two records, and from its
    last record to its position `after`. A partition whose offsets go back (a seek during
    the fetch) tells nothing."""
    holes: dict[TP, list[tuple[int, int]]] = {}
    for tp, start in before.items():
        end = after.get(tp)
        if end is None:
            continue
        expected, ranges = start, []
        for record in records.get(tp, ()):
            offset = record.offset
            if offset < expected:
                break
            if offset > expected:
                ranges.append((expected, offset))
            expected = offset + 1
        else:
            if end >= expected:
                if end > expected:
                    ranges.append((expected, end))
                if ranges:
                    holes[tp] = ranges
    return holes


def next_commit(acked: set[int], committed: int | None) -> int | None:
    """The offset to commit after the consecutive run that starts the acknowledged offsets,
    or None while the offset at the committed position (give or take one) is not among them.
    `committed` None: nothing is known of the partition's start (anything goes)."""
    if not acked:
        return None
    first = min(acked)
    if committed is not None and first - committed > 1:
        return None
    end = first
    while end + 1 in acked:
        end += 1
    return end + 1


class AtLeastOnceConsumer(Consumer):
    """Faust's aiokafka consumer: no record lost to a seek, commits over a set of offsets."""

    _seeks: int = 0
    _seeking: bool = False
    _during: dict[TP, int]
    """First offset of each partition fetched while a seek ran (withheld, fetched again)."""
    _rewound: Mapping[TP, int] = MappingProxyType({})
    """Where the last seek moved partitions that have no committed offset."""
    start_offsets: Mapping[tuple[str, int], int] = MappingProxyType({})
    """Where the group starts an input partition nobody has committed (`worker --from`);
    any other uncommitted partition starts at its earliest offset."""
    _expired: int = 0
    """Seeks done plus `expire_delivered` calls: what was delivered before the latest is stale."""
    _delivered: WeakKeyDictionary[Message, int] | None = None
    """The value of `_expired` when each message in the pipeline's hands was delivered."""
    _skipped: dict[TP, IntervalTree] | None = None
    """Per partition, offsets a fetch went past without returning them (`skipped_by_fetch`):
    aborted transactions' records and transaction markers, never delivered."""
    after_seek: Callable[[], None] | None = None
    """Called when a seek has moved partitions back: whatever was delivered before it and not
    acknowledged yet comes again, so what the pipeline holds of it must go (applied after the
    redelivered records' predecessors were skipped as seen, it lost them: 125 users' counts in
    a two-worker kill run)."""

    async def perform_seek(self) -> None:
        self._seeking, self._during = True, {}
        try:
            await super().perform_seek()
            await self._rewind_uncommitted()
            await self._refetch_withheld()
        finally:
            self._seeking = False
        self._seeks += 1
        self._expired += 1
        if self.after_seek is not None:
            self.after_seek()

    async def _refetch_withheld(self) -> None:
        """Records fetched while the seek ran were not delivered (from before the seek or
        after it, nobody can tell): each such partition goes back to where the seek put it,
        or to the first withheld record if that is earlier."""
        assigned = self.assignment()
        moves: dict[TP, int] = {}
        for tp, offset in self._during.items():
            if tp not in assigned:
                continue
            target = self._committed_offset.get(tp) or self._rewound.get(tp)
            moves[tp] = offset if target is None else min(target, offset)
        await self._seek_in_consumer_thread(moves)

    async def _rewind_uncommitted(self) -> None:
        """Faust's seek moves only partitions with a committed offset above 0 (aiokafka's
        `seek_to_committed`); every other assigned partition goes back to where the group
        starts it: its `start_offsets` entry, or the earliest offset on the broker. Not to the
        first record this consumer delivered: records fetched during recovery are dropped
        inside Faust's fetch loop (flow stopped, partition paused) before they reach this
        class, yet they move aiokafka's position; a worker that took over a partition nobody
        had committed began 5,568 records in, and committed past them."""
        self._rewound = rewound = {}
        uncommitted = [
            tp
            for tp in self.assignment()
            if not self._committed_offset.get(tp) and not self._is_changelog_tp(tp)
        ]
        if not uncommitted:
            return
        unknown = [tp for tp in uncommitted if (tp.topic, tp.partition) not in self.start_offsets]
        earliest = await self.earliest_offsets(*unknown) if unknown else {}
        for tp in uncommitted:
            offset = self.start_offsets.get((tp.topic, tp.partition), earliest.get(tp))
            if offset is not None:
                rewound[tp] = offset
        await self._seek_in_consumer_thread(rewound)

    async def _seek_in_consumer_thread(self, moves: dict[TP, int]) -> None:
        """Faust's `seek` moves aiokafka's fetcher from the event loop's thread while the
        consumer thread may be iterating its fetched records: under a rebalance on a backlog
        that raised KeyError in aiokafka's `fetched_records` and crashed the worker's Fetcher
        (a two-worker SIGTERM test). `seek_wait` runs the seeks on the consumer thread."""
        if moves:
            await self.seek_wait(moves)

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        """One fetch from aiokafka, and the offsets it went past (`skipped_by_fetch`): read
        before Faust's `getmany` filters or cuts short what it fetched."""
        before = self._positions()
        records = await super()._getmany(active_partitions, timeout)
        holes = skipped_by_fetch(before, records or {}, self._positions())
        if holes:
            if self._skipped is None:
                self._skipped = {}
            for tp, ranges in holes.items():
                tree = self._skipped.setdefault(tp, IntervalTree())
                for begin, end in ranges:
                    tree.addi(begin, end)
        return records

    def _positions(self) -> dict[TP, int]:
        """aiokafka's fetch positions of the assigned stream partitions: its subscription
        state, read without a request (the next offset a fetch starts at)."""
        consumer = self._thread._consumer
        subscription = consumer._subscription.subscription if consumer is not None else None
        assignment = subscription.assignment if subscription is not None else None
        if assignment is None:
            return {}
        positions: dict[TP, int] = {}
        for tp in assignment.tps:
            state = assignment.state_value(tp)
            if state is not None and state.has_valid_position and not self._is_changelog_tp(tp):
                positions[tp] = state.position
        return positions

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        seeks = self._seeks
        fetched = cast(AsyncGenerator[tuple[TP, Message], None], super().getmany(timeout))
        async with aclosing(fetched) as batch:
            async for tp, message in batch:
                if self._seeks != seeks:
                    # A seek ended while this batch was being delivered: the batch may
                    # predate it, and the record in flight wrote its offset over the seek's.
                    # Seek again now that nothing is in flight, and drop the batch: it is
                    # fetched again from where the seeks put each partition.
                    log.info("a seek overtook a fetched batch: seeking again")
                    await self.perform_seek()
                    return
                if self._seeking and not self._is_changelog_tp(tp):
                    # Not delivered: from before the seek or after it, it is fetched again
                    # once the seek ends (`_refetch_withheld`). Standby changelog records go
                    # on: recovery is done, and a standby must not miss one.
                    self._during.setdefault(tp, message.offset)
                    continue
                if self._delivered is None:
                    self._delivered = WeakKeyDictionary()
                self._delivered[message] = self._expired
                yield tp, message
            if self._seeks != seeks:
                # The seek ended while the batch's last record was in flight: that record
                # wrote its offset over the seek's all the same, and with no record after it
                # the check above never ran. The records before that offset, fetched again
                # from the committed one, looked older than the read offset and were dropped
                # unseen: a worker restarted in a kill test sat idle before the tail of
                # every input partition, never acknowledging it.
                log.info("a seek ended while a batch's last record was in flight: seeking again")
                await self.perform_seek()

    def stale(self, message: Message) -> bool:
        """Delivered before the latest seek or `expire_delivered`: it comes again, in its
        place. Such a message may still reach a stream (an agent's `take` buffer held it), and
        applied now it would run ahead of its redelivered predecessors."""
        delivered = self._delivered.get(message) if self._delivered is not None else None
        return delivered is not None and delivered < self._expired

    def expire_delivered(self) -> None:
        """Partitions are being revoked: everything delivered so far and not acknowledged
        comes again after the assignment (from the committed offset, here or at the next
        owner). Between the revocation and that seek an agent's `take` buffer still handed
        the pipeline messages of the old assignment; with the aligner emptied by the revoke
        nothing held them back, and mentions-2's offsets 351..367 were applied ahead of
        49..350, whose engagements the targets then took for duplicates (1,125 of one user's
        mentions lost in a two-worker kill run)."""
        self._expired += 1

    def _new_offset(self, tp: TP) -> int | None:
        acked: list[int] = self._acked[tp]
        self._gap[tp].clear()  # includes the record after each hole: `skipped` instead
        committed = self._committed_offset[tp]
        if not committed and tp in self._rewound:
            # Never committed: the run must start where the seek started the partition, or
            # a record acknowledged ahead of earlier ones (a stale copy) commits past them.
            committed = self._rewound[tp]
        done = set(acked)
        skipped = self._skipped.get(tp) if self._skipped is not None else None
        base = committed if committed is not None else min(done, default=None)
        if skipped and base is not None:
            skipped.chop(0, base)
            for interval in skipped:
                done.update(range(interval.begin, interval.end))
        if not done:
            return None
        offset = next_commit(done, committed)
        acked[:] = sorted({o for o in acked if offset is None or o >= offset})
        if offset is not None:
            self._acked_index[tp].difference_update(range(min(done), offset))
        return offset

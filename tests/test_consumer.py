"""The offset a worker commits (pipeline/consumer.py): Faust's rule over a set of offsets."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP as TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import IntervalTree

from pipeline.consumer import AtLeastOnceConsumer, next_commit

TP = ("inputs", 0)


A, B, C = (TopicPartition(name, 0) for name in "abc")


async def earliest(self: object, *tps: str) -> dict[str, int]:
    """The broker's earliest offsets: every test partition starts at 0."""
    return dict.fromkeys(tps, 0)


@dataclass(eq=False)  # hashed by identity, as Faust's messages are
class Record:
    offset: int


def consumer(
    acked: list[int], committed: int | None, gaps: tuple[tuple[int, int], ...] = ()
) -> object:
    tree = IntervalTree()
    for begin, end in gaps:
        tree.addi(begin, end)
    return SimpleNamespace(
        _acked=defaultdict(list, {TP: list(acked)}),
        _acked_index=defaultdict(set, {TP: set(acked)}),
        _gap=defaultdict(IntervalTree, {TP: tree}),
        _committed_offset=defaultdict(lambda: None, {TP: committed}),
        _skipped=None,
    )


def new_offset(state: object) -> int | None:
    return AtLeastOnceConsumer._new_offset(state, TP)  # type: ignore[arg-type]


def test_duplicates_do_not_cut_the_run_short() -> None:
    # Faust's own rule stops at the first repeated offset: it would commit 198 here.
    state = consumer([194, 195, 196, 197, 197, 198, 199, 199, 200], committed=194)
    assert new_offset(state) == 201
    assert state._acked[TP] == []  # type: ignore[attr-defined]


def test_a_gap_recorded_over_acknowledged_offsets_joins_them() -> None:
    # The fetch loop recorded 239..269 as a gap (its own message included) while
    # 238..268 were acknowledged as well.
    state = consumer([*range(238, 269), 269, 270], committed=238, gaps=((239, 270),))
    assert new_offset(state) == 271
    assert not state._gap[TP]  # type: ignore[attr-defined]


def test_nothing_is_committed_past_a_missing_offset() -> None:
    state = consumer([10, 11, 13, 14], committed=10)
    assert new_offset(state) == 12
    assert state._acked[TP] == [13, 14]  # type: ignore[attr-defined]
    state._committed_offset[TP] = 11  # type: ignore[attr-defined]
    assert new_offset(state) is None  # 11 and 12 not acknowledged
    assert state._acked[TP] == [13, 14]  # type: ignore[attr-defined]


def test_the_head_waits_for_an_unacknowledged_offset_beyond_one() -> None:
    assert next_commit({13, 14}, committed=10) is None
    assert next_commit({11, 12}, committed=10) == 13  # Faust's one-offset tolerance (markers)
    assert next_commit(set(), committed=10) is None


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1))
def test_the_commit_is_the_end_of_the_first_consecutive_run(offsets: list[int]) -> None:
    done = set(offsets)
    first = min(done)
    expected = first
    while expected in done:
        expected += 1
    assert next_commit(done, committed=None) == expected


def test_a_batch_that_a_seek_overtook_is_dropped_and_the_seek_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeks: list[object] = []

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        for tp, offset in ((A, 218), (B, 5), (B, 6), (A, 219)):
            yield tp, Record(offset)

    async def seek_to_committed(self: object) -> None:
        seeks.append("committed")

    async def seek_wait(self: object, partitions: dict[object, int]) -> None:
        seeks.extend(partitions.items())  # on the consumer thread

    monkeypatch.setattr(Consumer, "getmany", fetched)
    monkeypatch.setattr(Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: False)
    monkeypatch.setattr(Consumer, "assignment", lambda self: {A, B})
    monkeypatch.setattr(Consumer, "earliest_offsets", earliest)
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {A: 218, B: None}

    async def deliver() -> list[object]:
        delivered: list[object] = []
        async for tp, record in consumer.getmany(1.0):
            delivered.append((tp, record.offset))
            if record.offset == 218:
                await consumer.perform_seek()  # recovery's seek ends while a218 is in flight
        return delivered

    assert asyncio.run(deliver()) == [(A, 218)]
    # Recovery's seek, then the repeat with nothing in flight: "a" goes back to its committed
    # offset, "b" (never committed: aiokafka leaves it where it is) to the partition's start.
    assert seeks == ["committed", (B, 0), "committed", (B, 0)]


def test_a_seek_that_ends_during_a_batchs_last_record_is_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No record follows the one in flight, so only the end of the batch can see the seek:
    without the repeat, that record's offset stays Faust's read offset, and the records
    before it, fetched again from the committed offset, are dropped as already read."""
    seeks: list[object] = []

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        for offset in (218, 219):
            yield A, Record(offset)

    async def seek_to_committed(self: object) -> None:
        seeks.append("committed")

    async def seek_wait(self: object, partitions: dict[object, int]) -> None:
        seeks.extend(partitions.items())

    monkeypatch.setattr(Consumer, "getmany", fetched)
    monkeypatch.setattr(Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: False)
    monkeypatch.setattr(Consumer, "assignment", lambda self: {A})
    monkeypatch.setattr(Consumer, "earliest_offsets", earliest)
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {A: 218}

    async def deliver() -> list[object]:
        delivered: list[object] = []
        async for tp, record in consumer.getmany(1.0):
            delivered.append((tp, record.offset))
            if record.offset == 219:
                await consumer.perform_seek()  # ends while the batch's last record is in flight
        return delivered

    assert asyncio.run(deliver()) == [(A, 218), (A, 219)]
    assert seeks == ["committed", "committed"]  # the seek, then its repeat


def test_a_batch_without_a_seek_is_delivered_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        for offset in (1, 2):
            yield "tp", Record(offset)

    monkeypatch.setattr(Consumer, "getmany", fetched)
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {"tp": 1}  # type: ignore[dict-item]

    async def deliver() -> list[object]:
        return [record async for _, record in consumer.getmany(1.0)]

    assert [record.offset for record in asyncio.run(deliver())] == [1, 2]  # type: ignore[attr-defined]


def test_what_was_delivered_without_a_commit_is_delivered_again_after_a_seek(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebalance drops what the streams' buffers, the aligner and the merge held: delivered,
    never acknowledged. Faust's seek to the committed offset brings it back, except on a
    partition with no committed offset yet ("b"), which aiokafka leaves where it is: the next
    record's acknowledgement committed past the dropped ones and they were lost (an engagement
    in the two-worker kill test), or, with nothing left to fetch, the partition stalled."""
    seeks: list[object] = []

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        for tp, offset in ((A, 41), (B, 7), (B, 8), (C, 3)):
            yield tp, Record(offset)

    async def seek_to_committed(self: object) -> None:
        seeks.append("committed")

    async def seek_wait(self: object, partitions: dict[object, int]) -> None:
        seeks.extend(partitions.items())  # on the consumer thread

    monkeypatch.setattr(Consumer, "getmany", fetched)
    monkeypatch.setattr(Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: False)
    monkeypatch.setattr(Consumer, "assignment", lambda self: {A, B})
    monkeypatch.setattr(Consumer, "earliest_offsets", earliest)
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {A: 40, B: None, C: None}
    consumer.after_seek = lambda: seeks.append("pipeline drops its holds")

    async def deliver_then_seek() -> None:
        async for _ in consumer.getmany(1.0):
            pass
        await consumer.perform_seek()

    asyncio.run(deliver_then_seek())
    # "a" is Faust's to seek (committed 40); "c" is no longer assigned here. Then what the
    # pipeline held of the records before is dropped: it comes again, in order.
    assert seeks == ["committed", (B, 0), "pipeline drops its holds"]


def test_a_message_delivered_before_a_seek_is_stale_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent's `take` buffer may hand the pipeline a message delivered before a seek; it
    comes again in its place, so the pipeline skips the early copy."""

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        yield "a", Record(23)

    async def seek_to_committed(self: object) -> None:
        pass

    monkeypatch.setattr(Consumer, "getmany", fetched)
    monkeypatch.setattr(Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "assignment", lambda self: {"a"})
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {"a": 10}  # type: ignore[dict-item]

    async def deliver() -> list[Record]:
        return [record async for _, record in consumer.getmany(1.0)]  # type: ignore[misc]

    early = asyncio.run(deliver())[0]
    assert not consumer.stale(early)  # type: ignore[arg-type]
    asyncio.run(consumer.perform_seek())
    late = asyncio.run(deliver())[0]
    assert consumer.stale(early) and not consumer.stale(late)  # type: ignore[arg-type]


def test_a_partition_never_committed_commits_from_where_the_seek_started_it() -> None:
    """Offset 23 acknowledged first (a stale copy, or a message handed on ahead of others)
    on a partition without a committed offset: committing 24 skipped 0..22, and an
    engagement among them was lost at the next failover."""
    state = consumer([23], None)
    state._rewound = {TP: 0}  # type: ignore[attr-defined]
    assert new_offset(state) is None
    state = consumer([0, 1, 2], None)
    state._rewound = {TP: 0}  # type: ignore[attr-defined]
    assert new_offset(state) == 3


def test_records_dropped_inside_fausts_fetch_loop_are_fetched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While recovery runs, Faust's fetch loop drops what it fetched for stream partitions
    (flow stopped, partitions paused) before it reaches this class, and aiokafka's position
    moves past it. A worker taking over partitions nobody had committed began retweets-0 at
    offset 5,591 and committed past 23..5,590: 5,568 retweets lost in a two-worker kill run.
    After the seek every uncommitted partition is back at its start, whatever was delivered:
    the broker's earliest offset, or the `--from` offset the group starts it at."""
    seeks: list[object] = []

    async def seek_to_committed(self: object) -> None:
        seeks.append("committed")

    async def seek_wait(self: object, partitions: dict[object, int]) -> None:
        seeks.extend(partitions.items())  # on the consumer thread

    async def earliest_of(self: object, *tps: object) -> dict[object, int]:
        seeks.append(("earliest", *tps))
        return dict.fromkeys(tps, 12)

    retweets, tweets, mentions, log = (
        TopicPartition(topic, 0) for topic in ("retweets", "tweets", "mentions", "changelog")
    )
    monkeypatch.setattr(Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(Consumer, "earliest_offsets", earliest_of)
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: tp is log)
    monkeypatch.setattr(Consumer, "assignment", lambda self: [retweets, tweets, mentions, log])
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {mentions: 40}
    consumer.start_offsets = {("tweets", 0): 7}
    asyncio.run(consumer.perform_seek())
    assert seeks == ["committed", ("earliest", retweets), (retweets, 12), (tweets, 7)]
    assert consumer._rewound == {retweets: 12, tweets: 7}


def test_records_fetched_during_a_seek_are_withheld_and_fetched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fetched while a seek runs, a record may come from before the seek or after it. Taken
    as before (stale), a committed partition never got it again and stalled; taken as after,
    one from before was applied ahead of its redelivered predecessors. So it is not delivered
    at all, and its partition goes back to where the seek put it (or to it, if earlier)."""
    seeks: list[object] = []

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        for tp, offset in (("a", 7), ("a", 8), ("log", 3)):
            yield tp, Record(offset)

    async def seek_wait(self: object, partitions: dict[object, int]) -> None:
        seeks.extend(partitions.items())  # on the consumer thread

    monkeypatch.setattr(Consumer, "getmany", fetched)
    monkeypatch.setattr(Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(Consumer, "assignment", lambda self: {"a", "log"})
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: tp == "log")
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {"a": 5}  # type: ignore[dict-item]
    consumer._seeking, consumer._seeks, consumer._during = True, 3, {}
    consumer._rewound = {}

    async def deliver() -> list[tuple[object, int]]:
        return [(tp, record.offset) async for tp, record in consumer.getmany(1.0)]

    assert asyncio.run(deliver()) == [("log", 3)]  # a standby's changelog records go on
    asyncio.run(consumer._refetch_withheld())
    assert seeks == [("a", 5)]


def test_what_was_delivered_before_a_revocation_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between a revocation and the next assignment's seek an agent's `take` buffer still
    hands on messages of the old assignment. Applied then, with the aligner emptied by the
    revocation, mentions-2's 351..367 went ahead of 49..350 and the targets took the
    engagements of those for duplicates (a two-worker kill run lost 1,125 mentions)."""

    async def fetched(self: object, timeout: float) -> AsyncIterator[tuple[object, Record]]:
        yield A, Record(351)

    monkeypatch.setattr(Consumer, "getmany", fetched)
    consumer = object.__new__(AtLeastOnceConsumer)
    consumer._committed_offset = {A: 49}

    async def deliver() -> Any:
        async for _, record in consumer.getmany(1.0):
            return record

    early = asyncio.run(deliver())
    assert not consumer.stale(early)
    consumer.expire_delivered()
    assert consumer.stale(early)
    assert not consumer.stale(asyncio.run(deliver()))


PART = TopicPartition(*TP)
"""`TP` as Faust names it (equal to it, and hashed the same)."""


class FetchPositions:
    """aiokafka's consumer as `AtLeastOnceConsumer._positions` reads it: the subscription
    state's fetch position per assigned partition."""

    def __init__(self, positions: dict[object, int]) -> None:
        self.positions = positions
        states = self

        class State:
            def __init__(self, tp: object) -> None:
                self.tp = tp

            has_valid_position = True

            @property
            def position(self) -> int:
                return states.positions[self.tp]

        assignment = SimpleNamespace(tps=set(positions), state_value=State)
        self._subscription = SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))


def test_an_aborted_transaction_is_committed_over_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kill -9 under exactly-once: the dead worker's open transaction on a repartition
    partition nobody had committed yet is aborted (offsets 0..4,028, its marker 4,029); the
    restarted worker, rewound to the partition's start, is handed 4,030 and 4,031 (then a
    commit marker, 4,032). Faust's fetch loop records no gap after a seek to offset 0, and
    the commit waited at the hole for good: 4,029 messages stuck in a kill test."""
    aiokafka_consumer = FetchPositions({PART: 0})

    async def fetch(self: object, active: object, timeout: float) -> dict[object, list[Record]]:
        aiokafka_consumer.positions[PART] = 4033  # past the last record and the marker after it
        return {PART: [Record(4030), Record(4031)]}

    monkeypatch.setattr(Consumer, "_getmany", fetch)
    monkeypatch.setattr(Consumer, "_is_changelog_tp", lambda self, tp: False)
    state: Any = object.__new__(AtLeastOnceConsumer)
    vars(state).update(vars(consumer([], None)))
    state._rewound = {PART: 0}
    state._thread = SimpleNamespace(_consumer=aiokafka_consumer)
    records = asyncio.run(state._getmany(None, 1.0))
    assert [r.offset for r in records[PART]] == [4030, 4031]
    state._acked[PART].append(4030)
    assert new_offset(state) == 4031  # 4,031 delivered, not acknowledged yet
    state._committed_offset[PART] = 4031
    state._acked[PART].append(4031)
    assert new_offset(state) == 4033  # and past the marker after it
    state._committed_offset[PART] = 4033
    assert new_offset(state) is None  # nothing new


def test_a_hole_fetched_past_after_the_last_record_is_committed_over() -> None:
    """The dead worker's aborted transaction at the end of a partition: nothing follows it,
    so no later record shows the hole; the fetch position after it does."""
    from pipeline.consumer import skipped_by_fetch

    holes = skipped_by_fetch({PART: 10}, {PART: [Record(10), Record(11)]}, {PART: 4041})
    assert holes == {PART: [(12, 4041)]}
    state: Any = consumer([10, 11], 10)
    state._skipped = {PART: IntervalTree.from_tuples(holes[PART])}
    assert new_offset(state) == 4041


def test_a_record_after_a_hole_is_not_committed_before_it_is_acknowledged() -> None:
    """Faust's fetch loop records a hole as a gap that includes the record after it (read
    offset 10, record 14 delivered: gap 11..14), which then counted as done while it was
    still held (forwarded inputs wait in the aligner; 15 went ahead): committing 16 lost 14
    to a crash after that commit."""
    state: Any = consumer([10, 15], 10, gaps=((11, 15),))
    state._skipped = {PART: IntervalTree.from_tuples([(11, 14)])}
    assert new_offset(state) == 14
    state._acked[PART].append(14)
    state._committed_offset[PART] = 14
    assert new_offset(state) == 16


def test_a_fetch_that_a_seek_moved_back_tells_no_hole() -> None:
    from pipeline.consumer import skipped_by_fetch

    # Sought back to 50 while the fetch waited: its records start before the position it
    # started at; or sought back after it: the position ends before its records.
    assert skipped_by_fetch({PART: 100}, {PART: [Record(50), Record(52)]}, {PART: 53}) == {}
    assert skipped_by_fetch({PART: 100}, {PART: [Record(100), Record(105)]}, {PART: 20}) == {}
    assert skipped_by_fetch({PART: 7}, {}, {PART: 9}) == {PART: [(7, 9)]}  # markers only

"""`StallWatch`, the cluster tests' check that no partition stops silently, on made-up offsets:
a stall is a partition with messages to read whose committed offset does not move."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests.faults.cluster_kit import StallWatch
from tests.integration.pipeline_kit import Deployment


def watch_of(partitions: int = 1) -> StallWatch:
    return StallWatch(Deployment("127.0.0.1:1", "app", partitions))


def feed(watch: StallWatch, now: float, offset: int, end: int) -> None:
    """One sample in which every watched partition is committed at `offset` and ends at `end`."""
    committed = {tp: OffsetAndMetadata(offset, "") for tp in watch.tps}
    watch._sample(now, committed, {tp: end for tp in watch.tps})


def test_a_partition_that_keeps_its_offset_with_messages_to_read_stalls_until_it_moves() -> None:
    watch = watch_of()
    for now in (0.0, 1.0, 2.0, 3.0):
        feed(watch, now, offset=10, end=50)
    feed(watch, 4.0, offset=20, end=50)  # moved, still behind: a new stall may begin
    feed(watch, 5.0, offset=50, end=50)
    watch.stop()
    assert sorted(s.seconds for s in watch.stalls) == sorted([1.0, 4.0] * len(watch.tps))
    longest = watch.longest()
    assert longest is not None and longest.seconds == 4.0
    assert watch.recovered_after(1.0) == 3.0  # the 4 s stall under way at 1.0 ended at 4.0


def test_a_partition_read_to_its_end_never_stalls() -> None:
    watch = watch_of()
    for now in range(10):
        feed(watch, float(now), offset=50, end=50)
    watch.stop()
    assert watch.stalls == [] and watch.longest() is None
    assert watch.recovered_after(0.0) == 0.0


def test_a_partition_stalled_at_the_end_counts_until_the_watch_stops() -> None:
    watch = watch_of()
    feed(watch, 0.0, offset=0, end=5)
    watch.stop()
    longest = watch.longest()
    assert longest is not None and longest.until > 0.0
    assert isinstance(longest.tp, TopicPartition)


class FakeReader:
    """The next event of each input partition, at event time `heads[tp]`."""

    def __init__(self, heads: dict[TopicPartition, float]) -> None:
        self.heads = heads

    def seek(self, tp: TopicPartition, offset: int) -> None:
        pass

    async def getmany(self, tp: TopicPartition, timeout_ms: int, max_records: int) -> dict:  # type: ignore[type-arg]
        value = orjson.dumps({"ts": self.heads[tp]})
        return {tp: [SimpleNamespace(value=value)]}


def test_an_input_partition_held_for_event_time_order_is_no_stall_but_the_oldest_is() -> None:
    watch = watch_of()
    inputs = [tp for tp in watch.tps if tp.topic in watch.deployment.topics.inputs]
    held, oldest = inputs[0], inputs[1]
    heads = dict.fromkeys(inputs, 500.0)
    heads[held], heads[oldest] = 900.0, 100.0
    watch._reader = FakeReader(heads)
    committed = {tp: OffsetAndMetadata(10, "") for tp in watch.tps}
    ends = {tp: 50 for tp in watch.tps}
    watch._sample(0.0, committed, ends)
    watch._sample(20.0, committed, ends)
    asyncio.run(watch._forgive_held(20.0, committed, ends))
    assert watch._open[held][0] == 20.0  # ahead in event time: its clock restarts
    assert watch._open[oldest][0] == 0.0  # the oldest head: still stalled since 0
    assert watch.held == len(inputs) - 1

"""The broker's end offsets of input partitions a worker does not read, on demand.

A forwarder that says it is idle (`pipeline.merge.Progress.end`) had read its partition up to
some offset; the owner of the forward partition trusts that only while the broker holds nothing
past it (a producer may have appended an older event since). So the owner reads the end
offsets of those partitions, one ListOffsets request, after the inputs it holds were fetched.

Through its own client rather than Faust's consumer: `Consumer.highwaters` runs on the
consumer's thread and waited behind its fetches (0.5-1.5 s a call under load, which made the
input timer overlap itself). A consumer without a group reads offsets and joins nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


class EndOffsetReader:
    """A group-less aiokafka consumer, started on first use and stopped with the worker."""

    def __init__(self, client_options: dict[str, Any], timeout_s: float) -> None:
        self.client_options = client_options
        self.timeout_s = timeout_s
        self.consumer: AIOKafkaConsumer | None = None

    async def read(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offsets (the next offset to be written) by (topic, partition). Raises what
        aiokafka raises, or TimeoutError after `timeout_s`."""
        if self.consumer is None:
            consumer = AIOKafkaConsumer(group_id=None, **self.client_options)
            try:
                await asyncio.wait_for(consumer.start(), self.timeout_s)
            except BaseException:
                await consumer.stop()  # a start that timed out must not leave it unclosed
                raise
            self.consumer = consumer
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        ends = await asyncio.wait_for(self.consumer.end_offsets(wanted), self.timeout_s)
        return {(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()

"""Producing into Kafka: the aiokafka sink, the read-back of each partition's watermark, and
`run_produce`, the command that puts them around the pure loop (`pipeline.produce.loop`).

The sink is an idempotent producer (acks=all, ordered per partition, no duplicates), which is
what makes a partition's newest tagged line a watermark: everything of that source below it is
already there. aiokafka is imported only when a sink is built, so the loop and its tests need
no Kafka client.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

from pipeline.codec import key_partition
from pipeline.produce.loop import (
    ALL_TIME,
    Pacer,
    ProduceStats,
    Record,
    Source,
    TimeRange,
    Watermarks,
    fingerprint,
    produce,
    tag_of,
)
from pipeline.settings import Settings
from pipeline.sources import InputError, open_input

READ_BACK_CHUNK = 2000
"""Records read per step when looking back through a partition for a source's last line."""
DELIVERY_CHECK_EVERY = 10_000
"""Sends awaited in one go: bounds pending futures and surfaces a failed delivery early."""


class KafkaSink:
    """An idempotent aiokafka producer (acks=all, ordered per partition, no duplicates)."""

    def __init__(self, settings: Settings) -> None:
        from aiokafka import AIOKafkaProducer

        self.settings = settings
        self.producer = AIOKafkaProducer(
            **settings.kafka_client_options(), enable_idempotence=True, acks="all", linger_ms=20
        )
        self.partition_counts: dict[str, int] = {}
        self.retention_ms: dict[str, int] = {}
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await self.producer.start()
        for topic in self.settings.topics.inputs:
            partitions = await self.producer.partitions_for(topic)
            if not partitions:
                raise InputError(topic, "topic does not exist: run `influence topics create`")
            self.partition_counts[topic] = len(partitions)
        self.retention_ms = await self._retention()

    async def _retention(self) -> dict[str, int]:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        admin = AIOKafkaAdminClient(**self.settings.kafka_client_options())
        await admin.start()
        try:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t) for t in self.partition_counts]
            )
        finally:
            await admin.close()
        out: dict[str, int] = {}
        for response in responses:
            for _, _, _, name, entries, *_ in response.resources:
                for entry in entries:
                    if entry[0] == "retention.ms" and entry[1] is not None:
                        out[name] = int(entry[1])
        return out

    def oldest_kept_ms(self, topic: str) -> int | None:
        retention = self.retention_ms.get(topic, -1)
        return None if retention < 0 else int(time.time() * 1000) - retention

    async def stop(self) -> None:
        await self.producer.stop()

    def partition_for(self, topic: str, key: bytes) -> int:
        """Kafka's default partitioner (murmur2 of the key), as every Kafka client computes it."""
        return key_partition(key, self.partition_counts[topic])

    async def send(self, record: Record, partition: int, headers: list[tuple[str, bytes]]) -> None:
        future = await self.producer.send(
            record.topic,
            value=record.value,
            key=record.key,
            partition=partition,
            timestamp_ms=record.timestamp_ms,
            headers=headers,
        )
        self._pending.append(future)
        if len(self._pending) >= DELIVERY_CHECK_EVERY:
            await self._settle()

    async def _settle(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)

    async def flush(self) -> None:
        await self.producer.flush()
        await self._settle()

    async def watermarks(self, source_ids: Sequence[str]) -> Watermarks:
        """Each input partition read back from its end until every source's newest line is seen
        (or the partition's start is reached)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_options(), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        marks: Watermarks = {}
        wanted = set(source_ids)
        try:
            for topic, count in self.partition_counts.items():
                for partition in range(count):
                    tp = TopicPartition(topic, partition)
                    consumer.assign([tp])
                    begin = (await consumer.beginning_offsets([tp]))[tp]
                    end = (await consumer.end_offsets([tp]))[tp]
                    found: dict[str, int] = {}
                    upper = end
                    while upper > begin and not wanted <= set(found):
                        lower = max(begin, upper - READ_BACK_CHUNK)
                        consumer.seek(tp, lower)
                        for source, line in await _read_range(consumer, tp, lower, upper):
                            if source in wanted:
                                found[source] = max(found.get(source, 0), line)
                        upper = lower
                    for source, line in found.items():
                        marks[(source, topic, partition)] = line
        finally:
            await consumer.stop()
        return marks


async def _read_range(consumer: Any, tp: Any, lower: int, upper: int) -> list[tuple[str, int]]:
    """(source, line) of the tagged records at offsets [lower, upper) of one partition."""
    out: list[tuple[str, int]] = []
    position = lower
    while position < upper:
        batch = await consumer.getmany(tp, timeout_ms=2000, max_records=READ_BACK_CHUNK)
        messages = batch.get(tp, [])
        if not messages:
            # Offsets can be missing (transaction markers, compaction): stop at the log's end.
            if await consumer.position(tp) >= upper:
                break
            continue
        for message in messages:
            position = message.offset + 1
            if message.offset >= upper:
                break
            tag = tag_of(dict(message.headers or ()))
            if tag is not None:
                out.append(tag)
    return out


def count_lines(path: str) -> int:
    """Lines of an input (read once more, before producing): the progress bar's total."""
    with open_input(path) as stream:
        return sum(1 for _ in stream)


def progress_bar(total: int | None) -> Any:
    """A tqdm bar with rate and ETA on a terminal; None elsewhere."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=" lines", unit_scale=True, file=sys.stderr, mininterval=0.5)


async def run_produce(
    paths: Sequence[str],
    settings: Settings,
    *,
    fmt: str = "auto",
    speed: float = 0.0,
    window: TimeRange = ALL_TIME,
    source_id: str | None = None,
    dead_letter_out: BinaryIO | None = None,
) -> ProduceStats:
    """`influence produce`: resolve each input's fingerprint, read the watermarks, produce."""
    if source_id is not None and len(paths) != 1:
        raise ValueError("--source-id names one input; give one INPUT with it")
    if "-" in paths and source_id is None:
        raise ValueError("stdin has no fingerprint: name it with --source-id")
    sources = [Source(p, source_id or fingerprint(p)) for p in paths]
    sink = KafkaSink(settings)
    await sink.start()
    try:
        marks = await sink.watermarks([s.source_id for s in sources])
        bar = progress_bar(
            sum(count_lines(p) for p in paths) if "-" not in paths and sys.stderr.isatty() else None
        )
        try:
            return await produce(
                sources,
                sink,
                settings.topics,
                fmt=fmt,
                window=window,
                pacer=Pacer(speed),
                watermarks=marks,
                dead_letter_out=dead_letter_out,
                progress=bar,
            )
        finally:
            if bar is not None:
                bar.close()
    finally:
        await sink.stop()

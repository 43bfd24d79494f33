"""`influence produce`: replay historical files into the pipeline's input topics.

Each valid event goes to its input topic by kind (tweet, quote, reply → tweets; retweet →
retweets; mention → mentions), keyed by its actor (murmur2, as the pipeline requires), with the
Kafka record timestamp set to its event time. Invalid lines are counted, written to
``--dead-letter FILE`` when asked, and never produced: the dead-letter topic is for what workers
reject, with a topic/partition/offset that a file line does not have.

Re-running is safe. Every record carries two headers: ``influence-source`` (a fingerprint of the
input: sha256 of its bytes, or ``--source-id``) and ``influence-line`` (its line number). Before
producing, each input partition is read back from its end until the newest record of that
source is found; its line is the partition's watermark. A line whose partition already holds
that source's watermark at or beyond it is skipped. The idempotent producer keeps each
partition's records in send order with no gaps or copies, so everything of that source below a
partition's watermark is already there: a second run of the same file produces nothing, and a
run that died half-way resumes exactly where each partition stopped. What it does not cover:
two produce runs of the same input at the same time; a later run with an *earlier* ``--from``
(lines below a watermark are never produced); and records written by other producers (the
workers' per-actor dedup of recent event ids is the only guard there).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from pipeline.codec import DeadLetter, key_partition
from pipeline.settings import Settings, Topics
from pipeline.sources import InputError, numbered_events, open_input
from scoring import Event
from scoring.events import event_to_dict

SOURCE_HEADER = "influence-source"
LINE_HEADER = "influence-line"
READ_BACK_CHUNK = 2000
"""Records read per step when looking back through a partition for a source's last line."""
DELIVERY_CHECK_EVERY = 10_000
"""Sends awaited in one go: bounds pending futures and surfaces a failed delivery early."""
FINGERPRINT_CHARS = 16


@dataclass(frozen=True, slots=True)
class Record:
    """One input event as a Kafka record."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int


def to_record(event: Event, topics: Topics) -> Record:
    return Record(
        topics.for_kind(event.kind),
        event.actor.encode(),
        orjson.dumps(event_to_dict(event)),
        event.ts,
    )


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Event-time range [start, end): `--from` inclusive, `--to` exclusive, either open."""

    start: int | None = None
    end: int | None = None

    def contains(self, ts: int) -> bool:
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


class Pacer:
    """Paces sends by event time: at speed N, an event `d` ms after the first one sent goes out
    `d / N` ms after it on the wall clock; speed 0 never waits. Events that are late relative
    to that schedule (or out of order) go at once: pacing never reorders."""

    def __init__(
        self,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self._origin: tuple[int, float] | None = None

    def delay(self, ts: int) -> float:
        """Seconds to wait before sending an event of time `ts` (the first one sets the origin)."""
        if self.speed == 0:
            return 0.0
        now = self.clock()
        if self._origin is None:
            self._origin = (ts, now)
            return 0.0
        origin_ts, origin_wall = self._origin
        due = origin_wall + (ts - origin_ts) / 1000.0 / self.speed
        return max(0.0, due - now)

    async def wait(self, ts: int) -> None:
        seconds = self.delay(ts)
        if seconds > 0:
            await self.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Source:
    """One input file and the fingerprint its records are tagged with."""

    path: str
    source_id: str


def fingerprint(path: str) -> str:
    """sha256 of the input's bytes as stored (compressed or not), shortened."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from exc
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def count_lines(path: str) -> int:
    with open_input(path) as stream:
        return sum(1 for _ in stream)


class Sink(Protocol):
    """Where records go: Kafka in production, a list in unit tests."""

    def partition_for(self, topic: str, key: bytes) -> int: ...

    def oldest_kept_ms(self, topic: str) -> int | None:
        """The oldest record timestamp the topic keeps now (retention), None if it keeps all."""
        ...

    async def send(
        self, record: Record, partition: int, headers: list[tuple[str, bytes]]
    ) -> None: ...

    async def flush(self) -> None: ...


class RetentionError(ValueError):
    """An event older than its topic's retention: the broker would delete it within minutes."""


Watermarks = dict[tuple[str, str, int], int]
"""(source id, topic, partition) → the newest line of that source in that partition."""


@dataclass(slots=True)
class ProduceStats:
    produced: Counter[str] = field(default_factory=Counter)
    """Records produced, by topic."""
    already_produced: int = 0
    outside_range: int = 0
    invalid: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    seconds: float = 0.0

    def line(self) -> str:
        total = sum(self.produced.values())
        rate = total / self.seconds if self.seconds > 0 else 0.0
        topics = ", ".join(f"{t} {n:,}" for t, n in sorted(self.produced.items())) or "none"
        span = (
            f" · event time {_iso(self.first_ts)} → {_iso(self.last_ts)}"
            if self.first_ts is not None and self.last_ts is not None
            else ""
        )
        return (
            f"produced {total:,} events ({topics}) · {self.already_produced:,} already in the "
            f"topics, skipped · {self.outside_range:,} outside --from/--to · "
            f"{self.invalid:,} invalid lines, not produced{span} · {self.seconds:.1f} s, "
            f"{rate:,.0f} events/s"
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def headers_for(source_id: str, line: int) -> list[tuple[str, bytes]]:
    return [(SOURCE_HEADER, source_id.encode()), (LINE_HEADER, str(line).encode())]


async def produce(
    sources: Sequence[Source],
    sink: Sink,
    topics: Topics,
    *,
    fmt: str = "auto",
    window: TimeRange = TimeRange(),
    pacer: Pacer | None = None,
    watermarks: Watermarks | None = None,
    dead_letter_out: BinaryIO | None = None,
    progress: Any = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ProduceStats:
    """Sends every valid in-range event of `sources`, in file order, that is not already there."""
    stats = ProduceStats()
    pacer = pacer or Pacer(0)
    marks = watermarks or {}
    started = clock()
    for source in sources:
        for line, item in numbered_events(source.path, fmt):
            if progress is not None:
                progress.update(1)
            if isinstance(item, DeadLetter):
                stats.invalid += 1
                if dead_letter_out is not None:
                    dead_letter_out.write(item.to_json() + b"\n")
                continue
            if not window.contains(item.ts):
                stats.outside_range += 1
                continue
            record = to_record(item, topics)
            floor = sink.oldest_kept_ms(record.topic)
            if floor is not None and item.ts < floor:
                raise RetentionError(
                    f"{record.topic} deletes records older than {_iso(floor)} (retention.ms, by "
                    f"record timestamp = event time) and {source.path} line {line} is from "
                    f"{_iso(item.ts)}: set the input topics' retention.ms to -1 (`influence "
                    f"topics create` does) before replaying history"
                )
            partition = sink.partition_for(record.topic, record.key)
            if marks.get((source.source_id, record.topic, partition), 0) >= line:
                stats.already_produced += 1
                continue
            await pacer.wait(item.ts)
            await sink.send(record, partition, headers_for(source.source_id, line))
            stats.produced[record.topic] += 1
            if stats.first_ts is None or item.ts < stats.first_ts:
                stats.first_ts = item.ts
            if stats.last_ts is None or item.ts > stats.last_ts:
                stats.last_ts = item.ts
    await sink.flush()
    stats.seconds = clock() - started
    return stats


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
            tags = dict(message.headers or ())
            source, line = tags.get(SOURCE_HEADER), tags.get(LINE_HEADER)
            if source is not None and line is not None and line.isdigit():
                out.append((source.decode(), int(line)))
    return out


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
    window: TimeRange = TimeRange(),
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

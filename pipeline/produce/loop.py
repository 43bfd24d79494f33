"""The produce loop, without Kafka: which events of which files go to which topic, in what
order, at what pace, and which are already there (`influence produce`; the package docstring
says why re-running is safe).

Each valid event goes to its input topic by kind (`Topics.for_kind`), keyed by its actor, with
the record timestamp set to its event time and two headers: ``influence-source`` (a
fingerprint of the input) and ``influence-line`` (its line number). Invalid lines are counted,
written to ``--dead-letter FILE`` when asked, and never produced: the dead-letter topic is for
what workers reject, with a topic/partition/offset that a file line does not have. The loop
writes to a `Sink`: Kafka in production (`pipeline.produce.to_kafka`), a list in tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from pipeline.codec import DeadLetter
from pipeline.settings import Topics
from pipeline.sources import InputError, numbered_events
from scoring import Event
from scoring.events import event_to_dict

SOURCE_HEADER = "influence-source"
LINE_HEADER = "influence-line"
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


ALL_TIME = TimeRange()
"""The open range: every event time (no `--from`, no `--to`)."""


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
    """The headers that tag a record with its input and line (read back by `tag_of`)."""
    return [(SOURCE_HEADER, source_id.encode()), (LINE_HEADER, str(line).encode())]


def tag_of(headers: Mapping[str, bytes]) -> tuple[str, int] | None:
    """(source id, line) of a record `headers_for` tagged; None for any other record."""
    source, line = headers.get(SOURCE_HEADER), headers.get(LINE_HEADER)
    if source is None or line is None or not line.isdigit():
        return None
    return source.decode(), int(line)


async def produce(
    sources: Sequence[Source],
    sink: Sink,
    topics: Topics,
    *,
    fmt: str = "auto",
    window: TimeRange = ALL_TIME,
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

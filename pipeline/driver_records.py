"""What the in-process driver (`pipeline.driver`) keeps for its workers: records on in-memory
topics shaped as Faust's messages and events, a worker's view of the users changelog (Faust's
table), and a worker's data dir (its RocksDB store, kept across its restarts)."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field

from pipeline.codec import key_partition
from pipeline.ordering import TP


@dataclass(frozen=True, slots=True)
class Message:
    """A record on an in-memory topic, shaped as Faust's `Message` as far as the worker reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    time_in: float | None = None

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivered record, shaped as Faust's event (`.message`)."""

    message: Message


@dataclass
class DataDir:
    """A worker's RocksDB data dir, kept across its restarts: its partitions' users, and per
    partition the changelog offset they hold up to (Faust recovers from there)."""

    partitions: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    persisted: dict[int, int] = field(default_factory=dict)


class Killed(Exception):
    """A kill -9 inside a batch (`Driver.crash_writing_users`)."""


class Store(MutableMapping[bytes, bytes]):
    """A worker's view of the users changelog: the partitions it owns (Faust's table)."""

    def __init__(self, partitions: dict[int, dict[bytes, bytes]], owned: set[int], count: int):
        self.partitions = partitions
        self.owned = owned
        self.count = count

    def _part(self, key: bytes) -> dict[bytes, bytes]:
        partition = key_partition(key, self.count)
        if partition not in self.owned:
            raise KeyError(f"partition {partition} is not this worker's")
        return self.partitions.setdefault(partition, {})

    def __getitem__(self, key: bytes) -> bytes:
        partition = key_partition(key, self.count)
        if partition not in self.owned:
            raise KeyError(key)
        return self.partitions.get(partition, {})[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._part(key)[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._part(key)[key]

    def __iter__(self) -> Iterator[bytes]:
        for partition in sorted(self.owned):
            yield from list(self.partitions.get(partition, {}))

    def __len__(self) -> int:
        return sum(len(self.partitions.get(p, {})) for p in self.owned)

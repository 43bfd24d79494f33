"""Under exactly-once, a batch's users reach the table's store only once the transaction that
carries their changelog records has committed.

A store written before the commit holds records a `kill -9` then aborts: the RocksDB data dir
keeps users the changelog never got, the worker restarted on it takes the redelivered inputs
for seen (the users' offset guards) and their engagements, score events and changelog records
are never produced. (At-least-once has no abort: there the store is written once the
changelog records are flushed, `pipeline.faust_runner`.) So here the users wait, in order,
beside the store, and every read sees them (`Uncommitted` is the store the topology reads);
when a transaction commits, the batches it carried are written to the store, oldest first,
up to the first one still waiting on another transaction (a partition's batches come from its
input and its repartition transactions, and a user's newer state must never be overwritten by
an older one). When partitions move, what waits is dropped: its transactions are aborted (the
next owner's producer fences them) and its messages delivered again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Waiting:
    """One batch's users of one partition, waiting for `transaction` to commit."""

    sequence: int
    transaction: str
    event: Any
    """The event the users are written under (Faust's store of its partition)."""
    users: dict[bytes, bytes]
    offset: Any = None
    """The delivery metadata of its last changelog record (the offset the store then holds)."""
    committed: bool = False


@dataclass
class Uncommitted(MutableMapping[bytes, bytes]):
    """The users store as the topology reads it: `store`, under the users still waiting."""

    store: MutableMapping[bytes, bytes]
    waiting: dict[int, deque[Waiting]] = field(default_factory=dict)
    latest: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    """Per user waiting: the newest waiting batch's sequence number and value."""
    sequence: int = 0

    def add(
        self, partition: int, transaction: str, event: Any, users: dict[bytes, bytes], offset: Any
    ) -> None:
        """A batch's users, their changelog records sent and flushed in `transaction`."""
        if not users:
            return
        self.sequence += 1
        entry = Waiting(self.sequence, transaction, event, users, offset)
        self.waiting.setdefault(partition, deque()).append(entry)
        for key, value in users.items():
            self.latest[key] = (entry.sequence, value)

    def mark(self) -> int:
        """What has been added so far: a commit that starts now carries those batches."""
        return self.sequence

    def committed(self, transaction: str, mark: int) -> list[Waiting]:
        """`transaction` committed what was added up to `mark`: the batches now to write to
        the store, in order (each partition's, up to its first batch still waiting)."""
        ready: list[Waiting] = []
        for queue in self.waiting.values():
            for entry in queue:
                if entry.sequence <= mark and entry.transaction == transaction:
                    entry.committed = True
            while queue and queue[0].committed:
                entry = queue.popleft()
                ready.append(entry)
                for key in entry.users:
                    if self.latest.get(key, (0, b""))[0] == entry.sequence:
                        del self.latest[key]
        return ready

    def drop(self) -> None:
        """Partitions moved: what waits will be delivered again, and its transactions are
        aborted."""
        self.waiting.clear()
        self.latest.clear()

    # the store, read through what waits

    def __getitem__(self, key: bytes) -> bytes:
        waiting = self.latest.get(key)
        return waiting[1] if waiting is not None else self.store[key]

    def __contains__(self, key: object) -> bool:
        return key in self.latest or key in self.store

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.store[key] = value

    def __delitem__(self, key: bytes) -> None:
        """A user removed (forget): the store's row, and every waiting state of it, which
        written later would bring it back."""
        waiting = self.latest.pop(key, None)
        for queue in self.waiting.values():
            for entry in queue:
                entry.users.pop(key, None)
        if waiting is not None and key not in self.store:
            self.store[key] = waiting[1]  # so that the store's delete sends its tombstone
        del self.store[key]

    def __iter__(self) -> Iterator[bytes]:
        yield from self.latest
        for key in self.store:
            if key not in self.latest:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

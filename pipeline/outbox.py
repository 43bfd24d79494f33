"""What a batch of the topology sends: records in the order they must reach the broker.

The topology (`pipeline.topology`) never sends anything itself. It appends records here while
it handles a batch, and its runner (the Faust worker, `pipeline.kafka_app`, or the in-process
driver, `pipeline.driver`) takes them, sends them in order, flushes, then writes the batch's
changed users and only then acknowledges its inputs: the checkpoint order of
docs/reliability.md, in one place per runner instead of inside every handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce.

    `partition` None lets the producer's partitioner pick (dead letters, score changes: keyed).
    `context` is the event whose source-partition transaction the record joins under
    exactly-once (`pipeline.faust_compat.SourcePartitionTransactions`), None outside any; the
    driver ignores it.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    context: Any = None


@dataclass(slots=True)
class Outbox:
    """The records of the running batch, in production order."""

    records: list[Output] = field(default_factory=list)

    def add(self, output: Output) -> None:
        self.records.append(output)

    def take(self) -> list[Output]:
        records, self.records = self.records, []
        return records

    def __len__(self) -> int:
        return len(self.records)

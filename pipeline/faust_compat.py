"""Every private or internal faust-streaming / aiokafka name the pipeline depends on, in one place.

faust-streaming has no public API for what the worker needs: making an event current inside a
batch, routing a transactional send by its source partition, reading the consumer's offsets
synchronously, writing a table's store beside its changelog. Those reach into Faust's
internals; they are here, and nowhere else in `pipeline/`, so that an upgrade that moves one
breaks this module and `tests/test_faust_compat.py` (which checks each name and signature
below against the *installed* Faust and aiokafka, not against fakes), not a production run.

The consumer's overrides live in `pipeline.consumer` instead: `AtLeastOnceConsumer` is by
nature a subclass of Faust's aiokafka consumer that overrides private methods and reads its
private fields through `self`, and its docstring (why each fix exists) is as long as its code;
merged in here the module would pass 400 lines and mix two subjects. It is this module's
consumer part: the inventory below lists its names too, and the compat test covers them.

Inventory: the name, what the pipeline uses it for, where, and its door here.

Faust, `faust.streams`:
- `_current_event` (ContextVar of a weakref): the event one handler of a batch runs as
  (faust_runner: `run_batch` around each handler, `send` around each outbox record)
  → `as_current`.
- `current_event()`: read back by `SourcePartitionTransactions.send` → `current_event`
  (re-exported).

Faust, the transport:
- `TransactionManager.send(topic, key, value, partition, timestamp, headers, *,
  transactional_id)` overridden, with `.app`, `.consumer`, `.producer`,
  `Consumer.key_partition(topic, key, partition)`, `Producer.send(..., transactional_id=)`,
  `app.assignor.group_for_topic` → `SourcePartitionTransactions`, `transaction_of`.
- `TransactionManager.commit(offsets, start_new_transaction)` overridden (awaited by
  `Consumer._commit_offsets` under exactly-once), with `Producer.commit_transactions(
  {tid: offsets}, group_id, start_new_transaction=)` and `app.crash` → its listener
  (`listen_to_commits`: faust_runner writes a committed transaction's users to the store).
- `app.transport.Consumer`, `app.transport.TransactionManager`, `app.transport.Producer`
  (class hooks replaced before the consumer and producer are built; kafka_app `create_app`)
  → `install_transport`.
- `Producer._settings_extra()` overridden (the aiokafka options Faust adds, idempotence only
  inside transactions) → `IdempotentProducer`.
- `app.in_transaction`, `consumer.transactions`, the positional `send(topic, key, value,
  partition, timestamp, headers)` of both senders (faust_runner `Pipeline.send`) → `send_record`.
- `Consumer._read_offset` (faust_runner `has_more`, api `scrape.consumer_lag`) → `read_offset`.
- `Consumer._committed_offset` (api `scrape.consumer_lag`) → `committed_offset`;
  `pipeline.consumer` reads it through `self`.
- `app.consumer_generation_id`, `Message.generation_id` (faust_runner `Pipeline.current`)
  → `consumer_generation`, `generation_of`.
- `app.rebalancing` (api `read_model`) → `rebalancing`.

Faust, tables:
- `table.data`, the table's store, written directly (faust_runner `run_batch`) → `store_of`.
- A copy of `Collection._on_changelog_sent`: `app.tables.persist_offset_on_commit(store, tp,
  offset)`, `store.set_persisted_offset(tp, offset)` (faust_runner `run_batch`)
  → `persist_changelog_offset`.
- `app.tables.recovery`: `.completed`, `.in_recovery`, `.active_remaining_total()` (api
  `read_model.recovered`, `scrape.recovery`) → `recovery_done`, `recovery_progress`.

Faust's aiokafka consumer, overridden in `pipeline.consumer.AtLeastOnceConsumer`:
- `perform_seek()` (awaited by table recovery and by Faust's fetch loop), `getmany(timeout)`
  (iterated by `Consumer._drain_messages`), `_new_offset(tp)` (called by Faust's commit),
  `_getmany(active_partitions, timeout)` (awaited by `Consumer._wait_next_records`: one
  fetch, before Faust filters it).
- Its fields `_acked`, `_acked_index`, `_gap` (cleared: its gaps include the record after
  each hole), `_committed_offset`; its methods `_is_changelog_tp(tp)`, `seek(tp, offset)`,
  `assignment()`, `earliest_offsets(*tps)`.
- aiokafka's fetch positions, read synchronously (`AtLeastOnceConsumer._positions`): Faust's
  consumer thread `_thread._consumer` (the `AIOKafkaConsumer`, None before it starts), its
  `_subscription.subscription.assignment` (`tps`, `state_value(tp)`), each partition state's
  `has_valid_position` and `position`; `intervaltree.IntervalTree` (`addi`, `chop`).
- aiokafka: `AIOKafkaConsumer.seek_to_committed()`, which Faust's `perform_seek` runs and
  which moves only partitions committed above offset 0 (why `_rewind_uncommitted` exists).

Nothing here changes what Faust does; each function is the one-line access it replaces.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol

from aiokafka.errors import ProducerFenced
from faust.streams import _current_event, current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP, EventT

from pipeline.consumer import AtLeastOnceConsumer

log = logging.getLogger(__name__)

__all__ = [
    "CommitListener",
    "IdempotentProducer",
    "SourcePartitionTransactions",
    "as_current",
    "committed_offset",
    "consumer_generation",
    "current_event",
    "generation_of",
    "install_transport",
    "listen_to_commits",
    "persist_changelog_offset",
    "read_offset",
    "rebalancing",
    "recovery_done",
    "recovery_progress",
    "send_record",
    "store_of",
    "transaction_of",
]


# the current event


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Makes `event` Faust's current event while one event of a batch is handled.

    Faust reads the current event to pick the RocksDB partition store of a table read or
    write and (in `SourcePartitionTransactions`) the transaction of a send; inside a
    `take_events` batch it would otherwise be the batch's last event, of any partition.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


# the transport: transactions, consumer class, sends


class SourcePartitionTransactions(TransactionManager):
    """Exactly-once with repartitioning: a message joins its *source* partition's transaction.

    Faust picks the transactional producer by the destination partition, which another worker
    may own (no producer for it here, or a fenced one there). Kafka Streams' rule is the right
    one: everything a task produces while processing partition p, whatever its destination,
    commits atomically with p's offsets. Buffered sends outside an event (changelog writes)
    keep Faust's routing: their destination partition is the source partition anyway.
    """

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = current_event()
        if event is None:
            return await super().send(topic, key, value, partition, timestamp, headers)
        tid = transaction_of(self.app, event.message.tp)
        destination = self.consumer.key_partition(topic, key, partition)
        return await self.producer.send(
            topic, key, value, destination, timestamp, headers, transactional_id=tid
        )

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Faust's commit, one transaction at a time, telling the app's `CommitListener`
        which transaction committed what was sent before the commit began. A fenced producer
        crashes the app as in Faust, but the commit is not reported as done (Faust's returns
        True, and its table offsets were then persisted for an aborted transaction)."""
        by_transaction: dict[str, dict[TP, int]] = {}
        for tp, offset in offsets.items():
            by_transaction.setdefault(transaction_of(self.app, tp), {})[tp] = offset
        listener = COMMIT_LISTENERS.get(self.app)
        for tid, committed in by_transaction.items():
            mark = listener.mark() if listener is not None else 0
            try:
                await self.producer.commit_transactions(
                    {tid: committed}, self.app.conf.id, start_new_transaction=start_new_transaction
                )
            except ProducerFenced as exc:
                log.warning("ProducerFenced %s", exc)
                await self.app.crash(exc)
                return False
            if listener is not None:
                listener.committed(tid, mark)
        return True


class CommitListener(Protocol):
    """Told of each committed transaction (`SourcePartitionTransactions.commit`)."""

    def mark(self) -> int: ...

    def committed(self, transaction: str, mark: int) -> None: ...


COMMIT_LISTENERS: weakref.WeakKeyDictionary[Any, CommitListener] = weakref.WeakKeyDictionary()


def listen_to_commits(app: Any, listener: CommitListener) -> None:
    """`listener` is told of every transaction the app's worker commits (exactly-once)."""
    COMMIT_LISTENERS[app] = listener


def transaction_of(app: Any, tp: Any) -> str:
    """The transactional id of a source partition's transaction, as Faust names it in its
    commit (`{app id}-{topic group}-{partition}`)."""
    group = app.assignor.group_for_topic(tp.topic)
    return f"{app.conf.id}-{group}-{tp.partition}"


class IdempotentProducer(Producer):
    """Faust's producer, idempotent under at-least-once too (acks=all, one sequence per
    partition): when a broker dies after writing a batch but before acknowledging it, the
    retry to the new leader is not written twice. Faust turns idempotence on only inside
    transactions and has no setting for it."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def install_transport(app: Any) -> None:
    """The app's consumer is `AtLeastOnceConsumer`, its transaction manager
    `SourcePartitionTransactions`, its producer `IdempotentProducer` (set before the consumer
    and the producer are first built)."""
    app.transport.TransactionManager = SourcePartitionTransactions
    app.transport.Consumer = AtLeastOnceConsumer
    app.transport.Producer = IdempotentProducer


async def send_record(
    app: Any, topic: str, key: bytes | None, value: bytes | None, partition: int | None
) -> Awaitable[Any]:
    """Enqueues one record through the producer, or under exactly-once through the consumer's
    transaction manager; returns its delivery future."""
    sender = app.consumer.transactions if app.in_transaction else app.producer
    future: Awaitable[Any] = await sender.send(topic, key, value, partition, None, None)
    return future


# tables


def store_of(table: Any) -> MutableMapping[bytes, bytes]:
    """The table's store (the current event's partition store under RocksDB), written
    without going through `table[key] = value` and its changelog send."""
    store: MutableMapping[bytes, bytes] = table.data
    return store


def persist_changelog_offset(app: Any, table: Any, metadata: Any, at_once: bool = False) -> None:
    """The changelog offset the store holds up to (RocksDB keeps it and recovers from
    there), as Faust's `Collection._on_changelog_sent` records it; `at_once`: now, also
    under exactly-once (the record's transaction has committed). Faust's own exactly-once
    branch waits for a commit of the changelog partition, which its commits never name
    (they name source partitions), so under exactly-once it was never persisted."""
    tp, offset = metadata.topic_partition, metadata.offset
    store: Any = table.data
    if app.in_transaction and not at_once:
        app.tables.persist_offset_on_commit(store, tp, offset)
    else:
        store.set_persisted_offset(tp, offset)


def recovery_done(app: Any) -> bool:
    """Table recovery has completed and is not running again."""
    recovery = app.tables.recovery
    return bool(recovery.completed.is_set()) and not recovery.in_recovery


def recovery_progress(app: Any) -> tuple[bool, int]:
    """Whether table recovery runs, and how many changelog messages it has left."""
    recovery = app.tables.recovery
    return bool(recovery.in_recovery), int(recovery.active_remaining_total())


# the consumer's offsets and generations


def read_offset(consumer: Any, tp: TP) -> int | None:
    """Faust's read offset of `tp`: the next offset to read after a seek, the last one read
    after a fetch (None before either)."""
    offset: int | None = consumer._read_offset.get(tp)
    return offset


def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The offset this consumer last committed (or found committed) for `tp`, or None."""
    offset: int | None = consumer._committed_offset.get(tp)
    return offset


def consumer_generation(app: Any) -> int:
    """The consumer group generation of the app's current assignment."""
    generation: int = app.consumer_generation_id
    return generation


def generation_of(message: Any) -> int | None:
    """The consumer group generation in which `message` was fetched."""
    generation: int | None = message.generation_id
    return generation


def rebalancing(app: Any) -> bool:
    """Whether a rebalance is in progress (False for an app object without the flag)."""
    return bool(getattr(app, "rebalancing", False))

"""The Faust runner of the topology: feeds it Faust's batches and carries out its steps.

A `Batch` (`pipeline.processing`) runs under one lock per worker: the topology's handlers,
its outbox sent, one producer flush, each changed user's changelog record sent, another
flush, then each changed user written to the table's store once (under exactly-once when
the transaction carrying its changelog records commits: `pipeline.uncommitted`); an `Ack`
acknowledges on the agent's stream; a `Pause` lets the event loop run. Every private Faust
name is reached through `pipeline.faust_compat`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any, cast

import faust
from faust.exceptions import NotReady, ProducerSendError
from faust.streams import Stream
from faust.types import TP, EventT

from pipeline.consumer import AtLeastOnceConsumer
from pipeline.end_offsets import EndOffsetReader
from pipeline.faust_compat import (
    as_current,
    consumer_generation,
    generation_of,
    listen_to_commits,
    persist_changelog_offset,
    read_offset,
    send_record,
    store_of,
    transaction_of,
)
from pipeline.leaders import Leaders
from pipeline.metrics import PipelineMetrics
from pipeline.outbox import Output
from pipeline.processing import Ack, Batch, EndOffsets, Pause, Processing, Steps
from pipeline.settings import Settings
from pipeline.topology import Topology, Users
from pipeline.uncommitted import Uncommitted
from scoring import DecayWatch, Model

log = logging.getLogger(__name__)


class Pipeline:
    """Topics and table of one worker, and the runner of its topology's steps."""

    def __init__(self, app: faust.App, settings: Settings, model: Model) -> None:
        self.app = app
        self.settings = settings
        self.model = model
        names = settings.topics
        count = settings.partitions

        def topic(*topic_names: str) -> faust.TopicT:
            return app.topic(
                *topic_names, key_serializer="raw", value_serializer="raw", partitions=count
            )

        self.inputs = topic(*names.inputs, names.forwarded)  # `pipeline.forward`
        self.control = topic(names.control)
        self.engagements = topic(names.engagements)
        # bytes keys and values: Faust's table serializer is JSON unless told otherwise, and
        # JSON turned numeric user ids ("50329") into ints on recovery, so a restarted worker
        # missed those users, and RocksDB handed back decoded lists instead of our bytes.
        self.table = app.Table(
            "users", default=None, partitions=count, key_type=bytes, value_type=bytes
        )
        self.metrics = PipelineMetrics(model.model_version)
        self.uncommitted: Uncommitted | None = None
        """Exactly-once: the batches' users waiting for their transactions to commit, read
        through by the topology (`pipeline.uncommitted`)."""
        if settings.processing_guarantee == "exactly_once":
            self.uncommitted = Uncommitted(self.table)
            listen_to_commits(app, self)
        self.topology = Topology(
            settings,
            model,
            self.uncommitted if self.uncommitted is not None else self.table,
            self.table.changelog_topic.get_topic_name(),
            self.metrics,
        )
        self.processing = Processing(self.topology, self.has_more, next_offset=self.next_offset)
        self.end_offsets = EndOffsetReader(
            settings.kafka_client_options(), settings.end_offsets_timeout_s
        )
        """Confirms forwarders' idle claims (`processing.EndOffsets`)."""
        self.lock = asyncio.Lock()
        self.input_stream: Stream[bytes] | None = None
        self.engagement_stream: Stream[bytes] | None = None

    # what the query API reads (`pipeline.api.read_model`)

    @property
    def caches(self) -> dict[int, Users]:
        return self.topology.caches

    @property
    def clocks(self) -> dict[int, DecayWatch]:
        return self.topology.clocks

    @property
    def leaders(self) -> Leaders:
        return self.topology.leaders

    @property
    def watched(self) -> dict[int, dict[str, None]] | None:
        return self.topology.watched

    @watched.setter
    def watched(self, watched: dict[int, dict[str, None]] | None) -> None:
        self.topology.watched = watched

    async def scan_watched_users(self) -> dict[int, dict[str, None]]:
        """The table scan after an assignment (`Topology.scan`), the event loop free every
        few thousand rows."""
        for _ in self.topology.scan():
            await asyncio.sleep(0)  # a large table: let heartbeats and fetches through
        assert self.topology.watched is not None
        return self.topology.watched

    # feeding

    def current(self, events: Sequence[EventT[Any]]) -> list[EventT[Any]]:
        """The events delivered since the latest rebalance and seek: a batch an agent collected
        before one may reach it after (Faust's streams skip an old generation's messages one
        by one; a batch is past that check), and its messages come again, in order."""
        generation = consumer_generation(self.app)
        consumer = cast(AtLeastOnceConsumer, self.app.consumer)
        return [
            event
            for event in events
            if generation_of(event.message) == generation and not consumer.stale(event.message)
        ]

    def has_more(self, tp: Any, last_offset: int) -> bool:
        """Does the broker hold input beyond what reached the aligner? (Its timing, and whether
        a partition is idle for the progress it announces.) A partition the consumer does not
        hold at the moment (between the phases of a rebalance) may have more."""
        consumer = self.app.consumer
        if tp not in consumer.assignment():
            return True
        highwater = consumer.highwater(tp)
        if highwater is None:
            return last_offset < 0
        return bool(highwater > self.next_offset(tp, last_offset))

    def next_offset(self, tp: Any, last_offset: int) -> int:
        """The next offset this worker reads in `tp`, past `last_offset` (the last one that
        reached the aligner). Faust's read offset is the next offset to read after a seek,
        the last one read after that."""
        return max(last_offset + 1, read_offset(self.app.consumer, tp) or 0)

    async def run_inputs(self, events: Sequence[EventT[Any]]) -> None:
        stream = self.input_stream
        assert stream is not None
        await self.run(self.processing.input_steps(self.current(events)), stream)

    async def run_engagements(self, events: Sequence[EventT[Any]]) -> None:
        stream = self.engagement_stream
        assert stream is not None
        await self.run(self.processing.engagement_steps(self.current(events)), stream)

    async def run_control(self, events: Sequence[EventT[Any]]) -> None:
        await self.run(self.processing.control_steps(events), None)

    async def run(self, steps: Steps, stream: Stream[bytes] | None) -> None:
        """Carries out the steps of one delivery (`pipeline.processing`)."""
        try:
            step = next(steps)
            while True:
                reply: Any = True
                if isinstance(step, Batch):
                    reply = await self.run_batch(step)
                elif isinstance(step, Ack):
                    assert stream is not None or not step.events
                    for event in step.events:
                        await cast(Stream[bytes], stream).ack(event)
                elif isinstance(step, EndOffsets):
                    reply = await self.read_end_offsets(step.partitions)
                elif isinstance(step, Pause):
                    await asyncio.sleep(0)
                step = steps.send(reply)
        except StopIteration:
            return

    async def read_end_offsets(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], int] | None:
        """One ListOffsets request (`pipeline.end_offsets`); None when it fails: the check is
        best-effort, and unconfirmed idle claims just keep holding."""
        try:
            return await self.end_offsets.read(partitions)
        except Exception as exc:
            log.info("could not read the forwarders' end offsets: %r", exc)
            return None

    async def run_batch(self, batch: Batch) -> bool:
        """Handles a batch, then makes its outputs durable, then writes its changed users.

        False, and nothing done, when the partitions moved since the batch's work was taken
        (from an aligner or a merge that a rebalance has since emptied)."""
        processing = self.processing
        async with self.lock:
            if batch.assignment is not None and batch.assignment != self.topology.assignment:
                return False
            await self.scan_watched_users()
            outputs, last_of_partition = processing.apply(batch, as_current)
            for output in outputs:
                await self.send(output)
            await self.app.producer.flush()
            self.metrics.produced()
            last_sent: dict[int, Awaitable[Any]] = {}
            changed: list[tuple[int, Any, dict[bytes, bytes]]] = []
            for partition, event in last_of_partition.items():
                users: dict[bytes, bytes] = {}
                for record in processing.changelog(partition, event, users):
                    last_sent[partition] = await self.send(record)
                changed.append((partition, event, users))
            # The changelog records too, before the batch is acknowledged: a rebalance right
            # after it recovers the table from the changelog, and a record still in the
            # producer's buffer then would leave an older one in the table.
            await self.app.producer.flush()
            # Only then the store: written first, a kill -9 during that flush left a RocksDB
            # data dir ahead of the changelog, and the worker restarted on it skipped the
            # redelivered messages as seen, so those users never reached the changelog that
            # every other owner recovers from (users missing after a kill under load).
            # Under exactly-once, only once their transaction has committed (`committed`).
            for partition, event, users in changed:
                sent = last_sent.get(partition)
                metadata = await sent if sent is not None else None
                if self.uncommitted is not None:
                    tid = transaction_of(self.app, event.message.tp)
                    self.uncommitted.add(partition, tid, event, users, metadata)
                    continue
                self.write_store(event, users, metadata)
        return True

    def write_store(self, event: Any, users: dict[bytes, bytes], metadata: Any) -> None:
        """Users written to the table's store, and the changelog offset it then holds."""
        with as_current(event):  # Faust's store of the partition (RocksDB)
            store = store_of(self.table)
            for key, value in users.items():  # not `update`: its `data` is no store
                store[key] = value
            if metadata is not None:
                persist_changelog_offset(self.app, self.table, metadata, at_once=True)

    def mark(self) -> int:
        """A commit begins (`faust_compat.CommitListener`)."""
        return self.uncommitted.mark() if self.uncommitted is not None else 0

    def committed(self, transaction: str, mark: int) -> None:
        """A transaction committed: the batches it carried go to the store, in order."""
        if self.uncommitted is not None:
            for waiting in self.uncommitted.committed(transaction, mark):
                self.write_store(waiting.event, waiting.users, waiting.offset)

    async def send(self, output: Output) -> Awaitable[Any]:
        """Enqueues one record; returns its delivery future (`run_batch` flushes the producer).

        Under exactly-once the record joins its context event's source-partition transaction.
        """
        context = output.context
        with as_current(context) if context is not None else nullcontext():
            return await send_record(
                self.app, output.topic, output.key, output.value, output.partition
            )

    async def unless_stopping(self, work: Callable[[], Awaitable[None]]) -> None:
        """A timer's work, unless the worker is stopping. A timer that fired as a graceful
        stop began reached the producer after Faust had stopped it (`NotReady`) or while
        aiokafka closed it (`ProducerSendError` from `ProducerClosed`), and Faust logged the
        app as crashed; the batch was not acknowledged, so whoever owns its partitions next
        is delivered it again: handing it off is all there is left to do."""
        if self.app.should_stop:
            return
        try:
            await work()
        except (NotReady, ProducerSendError):
            if not self.app.should_stop:
                raise
            log.info("stopping: a timer's batch is left unacknowledged for the next owner")

    # partitions moving

    async def revoked(self) -> None:
        # Under the batch lock: a batch in flight finishes (outputs and changelog records on
        # the broker) before its decoded users are dropped (found by a kill test).
        cast(AtLeastOnceConsumer, self.app.consumer).expire_delivered()
        async with self.lock:
            self.processing.reset()
            if self.uncommitted is not None:  # its transactions are aborted, its input redone
                self.uncommitted.drop()
            if self.settings.processing_guarantee == "at_least_once":
                await self.app.consumer.commit()  # what Faust's wait for streams did

    async def assigned(self, assigned: Sequence[TP]) -> None:
        async with self.lock:
            self.processing.reset()
            if self.uncommitted is not None:
                self.uncommitted.drop()
            self.processing.track(assigned)
        self.metrics.rebalance()

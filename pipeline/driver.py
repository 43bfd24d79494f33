"""The in-process driver: the worker's production topology on in-memory topics, no broker.

Like Kafka Streams' TopologyTestDriver and bytewax's testing source and sink, it runs the very
code a Faust worker runs (`pipeline.processing`: the topology, its flows and their loops),
with N partitions, any number of workers in one consumer group, and the faults a broker
deployment meets, each a method call: `Worker.rewind` (a redelivery from the committed
offsets), `Driver.assign` (a rebalance, at any point between two steps, also while inputs
and engagements are held), `Driver.crash` (a kill -9: nothing more is committed or stored),
`Driver.start` over the stored users (a restart; `data_dir=True`: over the worker's own
RocksDB data dir, kept across its restarts), `Driver.crash_writing_users` (a kill -9 between
a batch's two writes of its users: the worker's store and the changelog topic),
`Driver.forget`. Time is the driver's: the holds' wall-clock waits run on `Driver.clock`,
moved by `Driver.sleep`.

What a broker does for the worker, the driver does the same way: co-partitioned topics
(partition p of every topic belongs to one worker), per-partition offset order, committed
offsets that advance over contiguous acknowledgements only, a compacted users changelog that
is the restored table (`store`: partition → key → value, written when a batch's users are),
and after an assignment, delivery from the committed offsets again. A worker started with a
data dir has a store of its own (`DataDir`), as a RocksDB worker restarted on its data dir
does: it recovers its partitions from the changelog topic (`changelog`, the records in
order) from the offset it holds up to, and keeps whatever else it held.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from pipeline.codec import key_partition
from pipeline.driver_records import DataDir, Delivered, Killed, Message, Store
from pipeline.ordering import TP
from pipeline.outbox import Output
from pipeline.processing import Ack, Batch, EndOffsets, Processing, Steps
from pipeline.settings import Settings
from pipeline.steps import Stored, decode_stored
from pipeline.topology import Topology, wall_ms
from scoring import Event, Model
from scoring.events import event_to_dict

CHANGELOG = "users-changelog"
ROUNDS = 10_000
"""Steps `Driver.run` takes at most before it calls the run stuck (a hold that never ends)."""


@dataclass
class Worker:
    """One worker of the group: its topology and flows, and its consumer's positions."""

    driver: Driver
    name: str
    owned: set[int] = field(default_factory=set)
    position: dict[TP, int] = field(default_factory=dict)
    """Next offset to deliver, per owned topic partition."""
    acked: dict[TP, set[int]] = field(default_factory=dict)
    data_dir: DataDir | None = None
    """Its own store (RocksDB on a data dir); None: the changelog is its store (memory)."""
    dies_writing_users: bool = False
    """Killed between the first and the second write of the next batch's users."""
    processing: Processing = field(init=False)

    def __post_init__(self) -> None:
        driver = self.driver
        partitions = driver.store if self.data_dir is None else self.data_dir.partitions
        store = Store(partitions, self.owned, driver.settings.partitions)
        topology = Topology(driver.settings, driver.model, store, CHANGELOG, now_ms=driver.now_ms)
        self.processing = Processing(
            topology, self.has_more, clock=driver.clock, next_offset=self.next_offset
        )

    @property
    def topology(self) -> Topology:
        return self.processing.topology

    def has_more(self, tp: Any, last_offset: int) -> bool:
        """As the Faust worker asks its consumer: records beyond those delivered?"""
        if tp.partition not in self.owned:
            return True
        end = len(self.driver.log(tp.topic)[tp.partition])
        return end > self.next_offset(tp, last_offset)

    def next_offset(self, tp: Any, last_offset: int) -> int:
        return max(last_offset + 1, self.position.get(tp, 0))

    def fetch(
        self, topics: Iterable[str], limit: int | None = None, only: set[int] | None = None
    ) -> list[Delivered]:
        """The next undelivered records of the owned partitions of `topics` (of those in
        `only`), at most `limit` per partition, partition after partition (as a fetch
        brings them)."""
        out: list[Delivered] = []
        for topic in topics:
            for partition in sorted(self.owned if only is None else self.owned & only):
                tp = TP(topic, partition)
                records = self.driver.log(topic)[partition]
                start = self.position.get(tp, 0)
                stop = len(records) if limit is None else min(len(records), start + limit)
                out.extend(Delivered(m) for m in records[start:stop])
                self.position[tp] = stop
        return out

    def step(
        self, limit: int | None = None, *, commit: bool = True, only: set[int] | None = None
    ) -> int:
        """One round: every agent's delivery handled (of the partitions in `only`), then a
        commit unless told not to; returns the records delivered (0: nothing new, though
        held work and timers may still run)."""
        names = self.driver.settings.topics
        inputs = self.fetch((*names.inputs, names.forwarded), limit, only)
        self.run(self.processing.input_steps(inputs))
        engagements = self.fetch((names.engagements,), limit, only)
        self.run(self.processing.engagement_steps(engagements))
        control = self.fetch((names.control,), limit, only)
        self.run(self.processing.control_steps(control), ack=[d.message for d in control])
        if commit:
            self.commit()
        return len(inputs) + len(engagements) + len(control)

    def timers(self) -> None:
        """What the worker's timers do: release what waited for quiet partitions."""
        self.run(self.processing.input_steps([]))
        if self.processing.engagements.held:
            self.run(self.processing.engagement_steps([]))

    def run(self, steps: Steps, ack: list[Message] | None = None) -> None:
        """Carries out the steps of one delivery, as `pipeline.faust_runner.Pipeline.run`."""
        try:
            step = next(steps)
            while True:
                reply: Any = True
                if isinstance(step, Batch):
                    reply = self.run_batch(step)
                elif isinstance(step, Ack):
                    for event in step.events:
                        self.ack(event.message)
                elif isinstance(step, EndOffsets):  # the broker's ends: the logs' lengths
                    log = self.driver.log
                    reply = {(t, p): len(log(t)[p]) for t, p in step.partitions}
                step = steps.send(reply)
        except StopIteration:
            pass
        for message in ack or ():
            self.ack(message)

    def run_batch(self, batch: Batch) -> bool:
        if batch.assignment is not None and batch.assignment != self.topology.assignment:
            return False
        for _ in self.topology.scan():
            pass
        outputs, last_of_partition = self.processing.apply(batch)
        for output in outputs:
            self.driver.produce(output)
        for partition, event in last_of_partition.items():
            users: dict[bytes, bytes] = {}
            records = self.processing.changelog(partition, event, users)
            self.driver.send_changelog(records)  # the changelog records on the broker first
            if self.dies_writing_users and records:
                raise Killed(self.name)
            store = self.topology.table  # then its store (`faust_runner`)
            for key, value in users.items():
                store[key] = value
            if self.data_dir is not None:
                self.data_dir.persisted[partition] = len(self.driver.changelog[partition])
        return True

    def ack(self, message: Message) -> None:
        self.acked.setdefault(message.tp, set()).add(message.offset)

    def commit(self) -> None:
        """Committed offsets move over contiguous acknowledgements only."""
        committed = self.driver.committed
        for tp, acked in self.acked.items():
            offset = committed.get(tp, 0)
            while offset in acked:
                acked.discard(offset)
                offset += 1
            committed[tp] = offset

    def rewind(self) -> None:
        """A seek to the committed offsets: everything delivered since comes again."""
        committed = self.driver.committed
        self.position = {tp: committed.get(tp, 0) for tp in self.position}
        self.acked.clear()
        self.processing.drop_holds()

    def revoke(self) -> None:
        """Partitions leave this worker: it commits what it acknowledged, forgets the rest."""
        self.commit()
        self.processing.reset()
        self.owned.clear()
        self.position.clear()
        self.acked.clear()

    def assign(self, partitions: Iterable[int]) -> None:
        self.processing.reset()
        self.owned.update(partitions)
        names = self.driver.settings.topics
        tps = [
            TP(topic, p)
            for topic in (*names.inputs, names.forwarded, names.engagements, names.control)
            for p in sorted(self.owned)
        ]
        committed = self.driver.committed
        self.position = {tp: committed.get(tp, 0) for tp in tps}
        self.recover()
        self.processing.track(tps)

    def recover(self) -> None:
        """A data dir's table recovery: each owned partition's changelog records from the
        offset the data dir holds up to; what the data dir held besides stays."""
        data_dir = self.data_dir
        if data_dir is None:
            return
        for partition in sorted(self.owned):
            records = self.driver.changelog[partition]
            users = data_dir.partitions.setdefault(partition, {})
            for key, value in records[data_dir.persisted.get(partition, 0) :]:
                if value is None:
                    users.pop(key, None)
                else:
                    users[key] = value
            data_dir.persisted[partition] = len(records)


class Driver:
    """Topics, committed offsets and stored users of one deployment, and its workers."""

    def __init__(self, model: Model, settings: Settings | None = None) -> None:
        self.model = model
        self.settings = settings or Settings(store="memory://")
        self.topics: dict[str, list[list[Message]]] = {}
        self.committed: dict[TP, int] = {}
        self.store: dict[int, dict[bytes, bytes]] = {}
        """The users changelog, compacted: partition → user key → encoded `Stored`."""
        self.changelog: list[list[tuple[bytes, bytes | None]]] = [
            [] for _ in range(self.settings.partitions)
        ]
        """The users changelog's records in order, per partition: what a data dir recovers,
        and the sequence the parity tests compare between the cores (the store is its
        compaction)."""
        self.data_dirs: dict[str, DataDir] = {}
        self.workers: dict[str, Worker] = {}
        self.now = 0.0
        self.changelog_records = 0
        self._round_robin = itertools.count()

    # time

    def clock(self) -> float:
        return self.now

    def now_ms(self) -> int:
        return wall_ms()

    def sleep(self, seconds: float) -> None:
        """Moves the driver's wall clock, then runs every worker's timers."""
        self.now += seconds
        for worker in list(self.workers.values()):
            worker.timers()
            worker.commit()

    # topics

    def log(self, topic: str) -> list[list[Message]]:
        log = self.topics.get(topic)
        if log is None:
            log = self.topics[topic] = [[] for _ in range(self.settings.partitions)]
        return log

    def produce(self, output: Output) -> Message:
        partition = output.partition
        if partition is None:
            count = self.settings.partitions
            partition = (
                key_partition(output.key, count)
                if output.key is not None
                else next(self._round_robin) % count
            )
        records = self.log(output.topic)[partition]
        message = Message(output.topic, partition, len(records), output.key, output.value)
        records.append(message)
        return message

    def send_changelog(self, records: Iterable[Output]) -> None:
        """Changelog records on the broker: the compacted topic and its log."""
        for record in records:
            assert record.partition is not None and record.key is not None
            self.changelog[record.partition].append((record.key, record.value))
            users = self.store.setdefault(record.partition, {})
            if record.value is None:
                users.pop(record.key, None)
            else:
                users[record.key] = record.value
            self.changelog_records += 1

    def pipe_input(self, event: Event, partition: int | None = None) -> Message:
        """An input on its kind's topic, keyed by its actor, in its actor's partition unless
        `partition` says another (a producer on another partitioner: forwarded)."""
        topic = self.settings.topics.for_kind(event.kind)
        value = orjson.dumps(event_to_dict(event))
        return self.produce(Output(topic, event.actor.encode(), value, partition))

    def pipe_raw(self, topic: str, key: bytes | None, value: bytes, partition: int = 0) -> None:
        self.produce(Output(topic, key, value, partition))

    def forget(self, user: str) -> None:
        value = b'{"kind":"forget","user":"' + user.encode() + b'"}'
        self.produce(Output(self.settings.topics.control, user.encode(), value))

    def read(self, topic: str) -> list[Message]:
        """Every record of `topic`, partition by partition."""
        return [m for records in self.log(topic) for m in records]

    # the group

    def start(self, name: str, *, data_dir: bool = False) -> Worker:
        """A worker joins (not assigned yet); `data_dir`: on its own data dir, the one it had
        before if it ran here already."""
        kept = self.data_dirs.setdefault(name, DataDir()) if data_dir else None
        worker = self.workers[name] = Worker(self, name, data_dir=kept)
        return worker

    def assign(self, assignment: dict[str, Iterable[int]]) -> None:
        """A rebalance: every worker's partitions revoked, then the new assignment given."""
        for worker in self.workers.values():
            worker.revoke()
        for name, partitions in assignment.items():
            self.workers[name].assign(partitions)

    def crash(self, name: str) -> None:
        """A kill -9: the worker is gone; what it sent and stored stays, what it acknowledged
        since its last commit is delivered again to the next owner."""
        del self.workers[name]

    def crash_writing_users(self, name: str, limit: int | None = None) -> bool:
        """A kill -9 in the middle of a batch's checkpoint: the worker steps (no commit) until
        a batch writes users, and dies between the two writes (its store, the changelog
        topic); False if it ran out of work first (then it dies between two steps)."""
        worker = self.workers[name]
        worker.dies_writing_users = True
        try:
            while worker.step(limit, commit=False):
                pass
            killed = False
        except Killed:
            killed = True
        self.crash(name)
        return killed

    def step(self, limit: int | None = None) -> int:
        return sum(worker.step(limit) for worker in list(self.workers.values()))

    def run(self, limit: int | None = None) -> None:
        """Steps every worker until nothing is delivered or held any more: the timers run
        when no record is left (a quiet partition's progress), and the holds' waits are
        slept out when only holds are left (a source nobody owns)."""
        settings = self.settings
        wait = max(settings.align_max_wait_s, settings.merge_max_wait_s)
        for _ in range(ROUNDS):
            if self.step(limit):
                continue
            self.sleep(0.0)
            if self.step(limit):
                continue
            if not self.holding():
                return
            self.sleep(wait)
        raise RuntimeError(f"the driver did not settle in {ROUNDS} rounds")

    def holding(self) -> bool:
        for worker in self.workers.values():
            processing = worker.processing
            if processing.engagements.held or len(processing.inputs.aligner):
                return True
        return False

    # state

    def users(self) -> dict[str, Stored]:
        """Every stored user, decoded."""
        return {
            key.decode(): decode_stored(value)
            for part in self.store.values()
            for key, value in part.items()
        }

    def stored(self, user: str) -> Stored | None:
        value = self.store.get(key_partition(user.encode(), self.settings.partitions), {}).get(
            user.encode()
        )
        return decode_stored(value) if value is not None else None


def driver_settings(partitions: int, **changes: Any) -> Settings:
    """Settings for a driver: `partitions` and anything else the test changes."""
    return replace(Settings(store="memory://"), partitions=partitions, **changes)

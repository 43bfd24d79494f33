"""Inputs read outside their actor's partition are forwarded there (`pipeline.forward`):
not dead-lettered, counted once however often they are forwarded, and applied at the owner
in event-time order with its own inputs. Plain code, no broker: two simulated workers
exchange the forward topic's messages in process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pipeline.aligner import EventTimeAligner
from pipeline.codec import key_partition
from pipeline.forward import (
    FORWARDED,
    Arrived,
    Forwarding,
    InputPayload,
    decode_forwarded,
    encode_forwarded,
)
from pipeline.merge import Progress, SourceMerge
from pipeline.steps import (
    FORWARDED_TOPIC,
    Position,
    UserCache,
    actor_step,
    decode_engagements,
    encode_engagements,
)
from scoring import Engagement, Event, Model
from tests.conftest import T0

INPUTS = ("tweets", "retweets", "mentions")
FORWARD = "forwarded"
PARTITIONS = 2


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Delivered:
    """A Faust event's shape, as far as `pipeline.forward` reads it."""

    message: Message


def actor_in(partition: int, prefix: str = "u") -> str:
    """An actor id whose murmur2 partition (where its state lives) is `partition`."""
    n = 0
    while key_partition(f"{prefix}{n}".encode(), PARTITIONS) != partition:
        n += 1
    return f"{prefix}{n}"


A0, A1 = actor_in(0, "a"), actor_in(1, "b")
"""A0's state lives in partition 0, A1's in partition 1."""


def retweet(n: int, actor: str, ms: int) -> Event:
    return Event(f"e{n}", "retweet", T0 + ms, actor, "star")


@dataclass
class Worker:
    """One worker owning one partition of every topic, run as `Pipeline.run_inputs` runs:
    inputs routed on arrival, forward messages received, the aligner releasing in order."""

    partition: int
    inputs: list[Event]
    forward_log: dict[int, list[bytes]]
    model: Model
    exactly_once: bool = False
    read: int = 0
    forwards_read: int = 0
    applied: list[tuple[int, str, bool]] = field(default_factory=list)
    """(ts, event id, duplicate) in the order the actor step ran them."""
    acked: list[tuple[str, int]] = field(default_factory=list)
    peers: list[Worker] = field(default_factory=list)
    """Every worker, this one included: the "broker" whose end offsets confirm idle claims."""

    def __post_init__(self) -> None:
        self.forwarding = Forwarding(
            FORWARD, INPUTS, PARTITIONS, self.has_more, exactly_once=self.exactly_once
        )
        self.aligner: EventTimeAligner[tuple[Delivered, InputPayload]] = EventTimeAligner(
            self.has_more, 60.0, clock=lambda: 0.0, watermark=self.forwarding.watermark
        )
        self.aligner.track([TP(t, self.partition) for t in (*INPUTS, FORWARD)])
        self.cache = UserCache({})

    def has_more(self, tp: Any, last_offset: int) -> bool:
        return tp.topic == "retweets" and self.read < len(self.inputs)

    def end_offset(self, source: tuple[int, int]) -> int:
        """The broker's end offset of an input partition: only `retweets` has records."""
        topic, partition = source
        return len(self.peers[partition].inputs) if INPUTS[topic] == "retweets" else 0

    def step(self, reads: int = 1) -> None:
        ready: list[tuple[Delivered, InputPayload]] = []
        topic = TP("retweets", self.partition)
        for _ in range(reads):
            if self.read < len(self.inputs):
                event = self.inputs[self.read]
                delivered = Delivered(Message("retweets", self.partition, self.read, b""))
                self.read += 1
                payload: InputPayload = event
                if self.forwarding.route_input(delivered, event):
                    payload = FORWARDED
                if isinstance(payload, Event):
                    self.aligner.add(topic, delivered.message.offset, event.ts, (delivered, event))
                elif not self.aligner.follow(topic, delivered.message.offset, (delivered, payload)):
                    ready.append((delivered, payload))
        log = self.forward_log[self.partition]
        while self.forwards_read < len(log):
            message = Message(FORWARD, self.partition, self.forwards_read, log[self.forwards_read])
            self.forwards_read += 1
            assert self.forwarding.receive(Delivered(message)) is None
        self.forwarding.arrived()
        ends = {s: self.end_offset(s) for s in self.forwarding.idle_claims()}
        self.forwarding.confirm(ends, self.forwarding.epoch)
        for partition, offset, ts, item in self.forwarding.release():
            self.aligner.add(TP(FORWARD, partition), offset, ts, item)
        ready.extend(self.aligner.release())
        for delivered, payload in ready:
            self.apply(delivered, payload)
        for _, partition, value in self.forwarding.take(self.aligner.queues, 500):
            self.forward_log[partition].append(value)
        self.acked.extend(
            (e.message.topic, e.message.offset) for e in self.forwarding.settle(ready)
        )

    def apply(self, delivered: Delivered, payload: InputPayload) -> None:
        if not isinstance(payload, Event | Arrived):
            return
        message = delivered.message
        if isinstance(payload, Arrived):
            origin, payload = payload.origin, payload.event
        else:
            origin = Position(INPUTS.index(message.topic), message.partition, message.offset)
        assert key_partition(payload.actor.encode(), PARTITIONS) == self.partition
        out = actor_step(self.cache, payload, origin, self.model)
        self.applied.append((payload.ts, payload.id, out.duplicate))


def run(workers: list[Worker], rounds: int = 200) -> None:
    for _ in range(rounds):
        for worker in workers:
            worker.step()


def two_workers(model: Model, p0: list[Event], p1: list[Event], **kw: Any) -> list[Worker]:
    log: dict[int, list[bytes]] = {0: [], 1: []}
    workers = [Worker(0, p0, log, model, **kw), Worker(1, p1, log, model, **kw)]
    for worker in workers:
        worker.peers = workers
    return workers


def test_an_input_in_its_actors_partition_is_not_forwarded() -> None:
    forwarding = Forwarding(FORWARD, INPUTS, PARTITIONS, lambda tp, last: False)
    here = Delivered(Message("retweets", 0, 7, b""))
    assert not forwarding.route_input(here, retweet(1, A0, 0))
    assert forwarding.outbox == {}
    assert forwarding.route_input(here, retweet(2, A1, 5))
    messages = forwarding.take({TP("retweets", 0): _Queue(7)}, 500)
    forwards = [m for m in messages if decode_forwarded(m[2]).events]
    assert [(partition, decode_forwarded(v).events) for _, partition, v in forwards] == [
        (1, [(Position(1, 0, 7), retweet(2, A1, 5))])
    ]
    # then the forwarder's progress, on every partition: read up to ts 5, nothing more there
    progress = [decode_forwarded(v).progress for _, _, v in messages[len(forwards) :]]
    assert progress == [[((1, 0), Progress(T0 + 5, True, 8))]] * PARTITIONS
    assert forwarding.take({TP("retweets", 0): _Queue(7)}, 500) == []  # unchanged: silent


@dataclass
class _Queue:
    last_offset: int


def test_a_forwarded_input_is_applied_at_its_owner_and_a_second_copy_is_not_counted(
    model: Model,
) -> None:
    """The old worker dead-lettered A1's events read in partition 0 (`wrong_partition`). Now
    they are applied in partition 1; a forwarder that crashes after forwarding and before
    committing forwards them again, and the copies are recognised by their original position."""
    stream = [retweet(i, A1, i * 1000) for i in range(6)]
    workers = two_workers(model, stream, [])
    run(workers)
    again = workers[0]
    again.read = 0  # redelivered from the committed offset: forwarded a second time
    again.forwarding.reset()
    run(workers)
    applied = workers[1].applied
    assert [i for _, i, dup in applied if not dup] == [e.id for e in stream]
    assert sum(dup for *_, dup in applied) == len(stream)
    assert workers[0].applied == []
    stored = workers[1].cache.users[A1]
    assert stored.positions == {"a1:0>1": 5}


def test_the_owner_holds_its_own_inputs_until_the_forwarded_ones_have_caught_up(
    model: Model,
) -> None:
    """A0's events come both ways: directly in partition 0 and through partition 1's
    forwarder, which reads slowly. The owner must apply them in event-time order."""
    direct = [retweet(i, A0, t) for i, t in enumerate([0, 2, 4, 6, 8])]
    through = [retweet(10 + i, A0, t) for i, t in enumerate([1, 3, 5, 7, 9])]
    workers = two_workers(model, direct, through)
    owner, slow = workers
    for _ in range(30):
        owner.step(reads=5)  # reads everything at once
        if _ % 3 == 0:
            slow.step()  # one input every third round
    times = [ts - T0 for ts, _, _ in owner.applied]
    assert times == list(range(10))


def test_an_idle_forwarder_holds_the_owner_back_once_the_broker_has_more_for_it(
    model: Model,
) -> None:
    """A live stream: partition 1's forwarder has read everything and said so (idle); then a
    producer writes A0's event at 5 into partition 1 (librdkafka's partitioner), and A0's
    event at 6 into partition 0. The owner read its own event first and, trusting the idle
    claim, applied 6 before 5 (one user 0.02-0.25 points off the replay in the two-worker
    forwarding test). An idle claim holds only while the broker has nothing past it."""
    workers = two_workers(model, [], [])
    owner, forwarder = workers
    run(workers, rounds=3)  # every forwarder has announced: idle, nothing read
    forwarder.inputs.append(retweet(1, A0, 5))
    owner.inputs.append(retweet(2, A0, 6))
    owner.step()  # reads its own event at 6 before the forwarder reads 5
    assert owner.applied == []
    run(workers, rounds=3)
    assert [ts - T0 for ts, _, _ in owner.applied] == [5, 6]


def test_two_workers_forwarding_to_each_other_do_not_wait_for_each_other(model: Model) -> None:
    """Each worker's inputs wait for the other's forwarding progress; since forwarding needs
    no alignment, neither waits for the other's alignment, and both finish in order."""
    p0 = [retweet(i, A0 if i % 3 else A1, i * 10) for i in range(30)]
    p1 = [retweet(100 + i, A1 if i % 3 else A0, i * 10 + 5) for i in range(30)]
    workers = two_workers(model, p0, p1)
    run(workers, rounds=40)
    for worker in workers:
        times = [ts for ts, _, dup in worker.applied]
        assert times == sorted(times)
        assert not any(dup for *_, dup in worker.applied)
    assert len(workers[0].applied) + len(workers[1].applied) == 60
    # and every message is acknowledged: inputs, forwards, progress-only messages
    for worker in workers:
        inputs = {o for t, o in worker.acked if t == "retweets"}
        forwards = {o for t, o in worker.acked if t == FORWARD}
        assert inputs == set(range(30))
        assert forwards == set(range(len(worker.forward_log[worker.partition])))


def test_forward_messages_are_acknowledged_in_offset_order() -> None:
    forwarding = Forwarding(FORWARD, INPUTS, PARTITIONS, lambda tp, last: False)
    late = encode_forwarded([(Position(1, 0, 0), retweet(1, A1, 50))])
    early = encode_forwarded([(Position(2, 0, 0), Event("e2", "mention", T0 + 10, A1, "x"))])
    idle = encode_forwarded([], [((t, 0), Progress(None, True)) for t in range(3)])
    for offset, value in enumerate([late, early, idle]):
        assert forwarding.receive(Delivered(Message(FORWARD, 1, offset, value))) is None
    released = forwarding.release()
    assert [ts - T0 for _, _, ts, _ in released] == [10, 50]  # event-time order
    first = [item for *_, item in released[:1]]
    assert [e.message.offset for e in forwarding.settle(first)] == []  # offset 0 still held
    rest = [item for *_, item in released[1:]]
    assert [e.message.offset for e in forwarding.settle(rest)] == [0, 1, 2]


def test_the_owner_waits_for_every_forwarder_then_a_silent_one_is_idle() -> None:
    forwarding = Forwarding(FORWARD, INPUTS, PARTITIONS, lambda tp, last: False)
    value = encode_forwarded([(Position(1, 0, 3), retweet(1, A1, 50))])
    forwarding.receive(Delivered(Message(FORWARD, 1, 0, value)))
    assert forwarding.release() == []  # tweets/0 and mentions/0 have not spoken
    assert forwarding.watermark(TP(FORWARD, 1)) == float("-inf")
    assert forwarding.watermark(TP("retweets", 1)) is None
    progress = [((0, 0), Progress(None, True)), ((1, 0), Progress(T0 + 50, False))]
    progress.append(((2, 0), Progress(T0 + 49, False)))
    forwarding.receive(Delivered(Message(FORWARD, 1, 1, encode_forwarded([], progress))))
    assert forwarding.release() == []  # mentions/0 may still forward something at 49..50
    progress = [((1, 0), Progress(T0 + 70, False)), ((2, 0), Progress(T0 + 60, False))]
    forwarding.receive(Delivered(Message(FORWARD, 1, 2, encode_forwarded([], progress))))
    assert [ts - T0 for _, _, ts, _ in forwarding.release()] == [50]
    assert forwarding.watermark(TP(FORWARD, 1)) == T0 + 60
    # the targets learn that forwarded partition 1 has sent everything up to 60
    known = forwarding.progress_of(TP(FORWARD, 1), Progress(T0 + 50, False), held=False)
    assert known == Progress(T0 + 60, False)


def test_exactly_once_forwards_in_the_source_transaction_and_applies_in_arrival_order() -> None:
    forwarding = Forwarding(FORWARD, INPUTS, PARTITIONS, lambda tp, last: False, exactly_once=True)
    source = Delivered(Message("retweets", 0, 4, b""))
    assert forwarding.route_input(source, retweet(1, A1, 5))
    messages = forwarding.take({TP("retweets", 0): _Queue(4)}, 500)
    assert [(context, partition) for context, partition, _ in messages] == [(source, 1)]
    forwarding.receive(Delivered(Message(FORWARD, 1, 0, messages[0][2])))
    assert len(forwarding.release()) == 1  # no progress under exactly-once: at once


def test_a_bad_forward_message_is_refused_with_a_reason() -> None:
    forwarding = Forwarding(FORWARD, INPUTS, PARTITIONS, lambda tp, last: False)
    refused = forwarding.receive(Delivered(Message(FORWARD, 0, 0, b"[1, 2]")))
    assert refused is not None and refused.reason == "bad_forward"
    assert [e.message.offset for e in forwarding.ackable()] == [0]


def test_engagements_of_forwarded_inputs_keep_their_path_apart() -> None:
    """One input partition's events reach a target through each forward partition in their
    own order: the target's guard keys must differ, and the merge source is the forward
    partition, whose owner announces its progress."""
    engagement = Engagement("e1", 0, T0, A1, "star", 1.0, 1.0, 1.0, 1.0)
    direct, via = Position(1, 0, 9), Position(1, 0, 7, via=1)
    decoded = decode_engagements(encode_engagements([(engagement, direct), (engagement, via)]))
    assert [origin for _, origin in decoded.engagements] == [direct, via]
    assert direct.key("t") != via.key("t")
    assert (direct.source, via.source) == ((1, 0), (FORWARDED_TOPIC, 1))


def test_low_water_is_the_oldest_release_still_possible() -> None:
    merge: SourceMerge[str] = SourceMerge(frozenset({(0, 0), (0, 1)}))
    assert merge.low_water() == float("-inf")
    merge.announce((0, 0), 100, False)
    merge.announce((0, 1), None, True)
    assert merge.low_water() == 100
    merge.add((0, 1), 40, "x")
    assert merge.low_water() == 40
    merge.release(10)
    merge.announce((0, 0), None, True)
    assert merge.low_water() == float("inf")


def test_an_empty_partition_with_a_watermark_holds_back_only_later_events() -> None:
    marks = {"f": 10.0}
    aligner: EventTimeAligner[str] = EventTimeAligner(
        lambda p, last: False, 60.0, clock=lambda: 0.0, watermark=lambda p: marks.get(str(p))
    )
    aligner.track(["in", "f"])
    for offset, ts in enumerate([5, 10, 11]):
        aligner.add("in", offset, ts, f"in@{ts}")
    assert aligner.release() == ["in@5", "in@10"]
    assert not aligner.idle("f")
    marks["f"] = float("inf")
    assert aligner.release() == ["in@11"]
    assert aligner.idle("f")

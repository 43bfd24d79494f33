"""The three-node cluster of the fault tests, and a watch on every partition while they run.

`Cluster` drives `deploy/kafka/kafka.sh --brokers 3` (its own ports and run dir: the single
broker other tests share is never touched): the node's pid, kill -9, start one node again, and
which node leads which partitions. `StallWatch` samples the group's committed offsets and the
end offsets of every partition the workers read, once a second in a thread of its own, so a
consumer that stops silently is seen (and timed) while the fault happens, not only at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.integration.conftest import KAFKA_SH
from tests.integration.pipeline_kit import Deployment

NODES = 3
START_TIMEOUT_S = 900  # a cold start resolves the jars; three JVMs on two busy cores are slow
SAMPLE_S = 1.0
"""How often `StallWatch` samples the offsets."""
CAUSED_WITHIN_S = 30.0
"""A stall that begins this soon after a fault counts as caused by it (a dead broker is noticed
after its 9 s session timeout, a dead worker after the group's 6 s one)."""
HOLD_CHECK_S = 15.0
"""An input partition stalled this long is looked at: is its next event ahead in event time?"""
CLIENT_TIMEOUT_S = 10.0
"""An offsets request that takes longer (a node down, a leader moving) is a missed sample."""


def kafka_sh(*args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """`kafka.sh --brokers 3 ARGS` (KAFKA_BROKERS=3 in its environment too)."""
    return subprocess.run(
        ["bash", str(KAFKA_SH), "--brokers", str(NODES), *args],
        env={**os.environ, "KAFKA_BROKERS": str(NODES)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr).strip()


@dataclass
class Cluster:
    """The running three-node cluster; `bootstrap` is what `kafka.sh start` printed last."""

    bootstrap: str

    def pid(self, node: int) -> int:
        done = kafka_sh("pid", str(node), timeout=30)
        assert done.returncode == 0, f"kafka.sh pid {node}: {output(done)}"
        return int(done.stdout.strip())

    def kill9(self, node: int) -> None:
        """SIGKILL to node `node`'s JVM: no controlled shutdown, no leadership handed over."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_node(self, node: int) -> float:
        """Starts node `node` again and waits until it answers; returns how long that took."""
        started = time.monotonic()
        done = kafka_sh("start-node", str(node))
        assert done.returncode == 0, f"kafka.sh start-node {node}:\n{output(done)}"
        return time.monotonic() - started

    def leaders(self, topics: tuple[str, ...] | list[str]) -> Counter[int]:
        """How many partitions of `topics` each node leads."""
        return asyncio.run(_leaders(self.bootstrap, list(topics)))

    def most_leading(self, topics: tuple[str, ...] | list[str]) -> int:
        """The node that leads the most partitions of `topics` (the lowest id on a tie)."""
        counts = self.leaders(topics)
        return max(sorted(counts), key=lambda node: counts[node])


async def _leaders(bootstrap: str, topics: list[str]) -> Counter[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        return Counter(p["leader"] for topic in described for p in topic["partitions"])
    finally:
        await admin.close()


def replicas(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(replicas, in-sync replicas) of each partition of `topic`, by partition."""
    return asyncio.run(_replicas(bootstrap, topic))


async def _replicas(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        parts = sorted(described["partitions"], key=lambda p: p["partition"])
        return [(len(p["replicas"]), len(p["isr"])) for p in parts]
    finally:
        await admin.close()


@dataclass
class Stall:
    """One partition with messages to read whose committed offset did not move."""

    tp: TopicPartition
    since: float
    until: float

    @property
    def seconds(self) -> float:
        return self.until - self.since


@dataclass
class StallWatch:
    """Samples the group's committed offsets and the end offsets of `deployment`'s inputs and
    internal topics every `SAMPLE_S`, in a thread, until `stop`.

    A partition stalls while it has messages to read (lag above `slack`, which leaves room for
    the transaction markers after a partition's last message) and its committed offset stays
    where it was. Samples that fail (a node down, the coordinator moving) are skipped: a
    partition that cannot be read counts as stalled until it moves again.

    Not a stall: an input partition whose next event is later in event time than the next
    event of another input partition with messages to read. The worker holds it on purpose
    (pipeline/aligner.py: partitions are read in event-time order), for as long as the others
    take to catch up, which on a slow run is minutes. Such a partition's stall clock restarts
    (`held` counts how often); one whose next event is the oldest must move.
    """

    deployment: Deployment
    slack: int = 0
    stalls: list[Stall] = field(default_factory=list)
    missed: int = 0
    samples: int = 0
    held: int = 0
    _open: dict[TopicPartition, tuple[float, int]] = field(default_factory=dict)
    _moved: dict[TopicPartition, list[float]] = field(default_factory=dict)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _reader: Any = None
    """A consumer of no group that reads the next event of a stalled input partition."""

    def __post_init__(self) -> None:
        topics = self.deployment.topics
        self.tps = [
            TopicPartition(t, p)
            for t in (*topics.inputs, topics.engagements, topics.forwarded)
            for p in range(self.deployment.partitions)
        ]

    def start(self) -> StallWatch:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        now = time.monotonic()
        for tp, (since, _) in self._open.items():
            self.stalls.append(Stall(tp, since, now))
        self._open.clear()

    def longest(self) -> Stall | None:
        return max(self.stalls, key=lambda s: s.seconds, default=None)

    def recovered_after(self, fault: float) -> float:
        """The time to recover: seconds from `fault` to the end of the longest stall that was
        under way at it or began within `CAUSED_WITHIN_S` after it (0 if none). The longest,
        not the last: between two commits (Faust commits every 2.8 s) any partition that has
        messages to read shows a short stall, which says nothing of the fault."""
        caused = [s for s in self.stalls if s.until >= fault and s.since <= fault + CAUSED_WITHIN_S]
        longest = max(caused, key=lambda s: s.seconds, default=None)
        return 0.0 if longest is None else longest.until - fault

    async def _run(self) -> None:
        group = self.deployment.name
        bootstrap = self.deployment.bootstrap
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
        )
        await admin.start()
        await consumer.start()
        await reader.start()
        self._reader = reader
        inputs = set(self.deployment.topics.inputs)
        reader.assign([tp for tp in self.tps if tp.topic in inputs])
        try:
            while not self._done.is_set():
                try:
                    committed, ends = await asyncio.wait_for(
                        asyncio.gather(
                            admin.list_consumer_group_offsets(group),
                            consumer.end_offsets(self.tps),
                        ),
                        CLIENT_TIMEOUT_S,
                    )
                    now = time.monotonic()
                    self._sample(now, committed, ends)
                    await asyncio.wait_for(self._forgive_held(now, committed, ends), 30)
                except (TimeoutError, KafkaError, OSError):
                    self.missed += 1
                await asyncio.sleep(SAMPLE_S)
        finally:
            await reader.stop()
            await consumer.stop()
            await admin.close()

    async def _next_event_time(self, tp: TopicPartition, offset: int) -> float | None:
        """The event time of the message at `offset` of input partition `tp`."""
        self._reader.seek(tp, offset)
        batch = await self._reader.getmany(tp, timeout_ms=3000, max_records=1)
        for message in batch.get(tp, []):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return float(orjson.loads(message.value)["ts"])
        return None

    async def _forgive_held(self, now: float, committed: dict, ends: dict) -> None:  # type: ignore[type-arg]
        """Restarts the stall clock of input partitions held for event-time order."""
        long = [
            tp
            for tp, (since, _) in self._open.items()
            if tp.topic in self.deployment.topics.inputs and now - since >= HOLD_CHECK_S
        ]
        if not long:
            return
        heads: dict[TopicPartition, float] = {}
        for tp in self.tps:
            if tp.topic not in self.deployment.topics.inputs:
                continue
            offset = max(0, committed[tp].offset if tp in committed else 0)
            if ends[tp] - offset > self.slack:
                ts = await self._next_event_time(tp, offset)
                if ts is not None:
                    heads[tp] = ts
        if not heads:
            return
        oldest = min(heads.values())
        for tp in long:
            if tp in heads and heads[tp] > oldest:
                self.held += 1
                self._open[tp] = (now, self._open[tp][1])

    def _sample(self, now: float, committed: dict, ends: dict) -> None:  # type: ignore[type-arg]
        self.samples += 1
        for tp in self.tps:
            offset = committed[tp].offset if tp in committed else 0
            lag = ends[tp] - max(0, offset)
            opened = self._open.get(tp)
            if opened is not None and (offset != opened[1] or lag <= self.slack):
                self.stalls.append(Stall(tp, opened[0], now))
                del self._open[tp]
                opened = None
            if opened is None and lag > self.slack:
                self._open[tp] = (now, offset)

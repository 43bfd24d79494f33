"""Shared plumbing of the Kafka benchmarks: the broker, fresh deployments, fast producing,
tailing the score topic, and waiting for a consumer group to reach the end of its topics.

Every benchmark runs in its own deployment (app id and topic names of its own), so runs never
see each other's messages and the shared development broker is left as it was.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.embedded import DEFAULT_INPUT
from pipeline.codec import decode_higgs_line
from scoring import Event
from scoring.events import SOURCE_FOR_KIND, SOURCES, event_to_dict
from tests.integration.pipeline_kit import Deployment, WorkerProcess

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
PARTITIONS = 4
_PORTS = itertools.count(17100 + (os.getpid() % 400) * 10)


@dataclass(frozen=True, slots=True)
class Message:
    """One input message: its source (`SOURCES`: the `Topics` field it goes to), key, value, event
    id."""

    topic: str
    key: bytes
    value: bytes
    event_id: str


def bootstrap() -> str:
    """The broker to use: KAFKA_BOOTSTRAP_SERVERS, or the project's own (started if absent)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        return configured
    subprocess.run(["bash", str(KAFKA_SH), "start"], check=True, stdin=subprocess.DEVNULL)
    return "127.0.0.1:9092"


def higgs_messages(count: int, path: Path = DEFAULT_INPUT) -> list[Message]:
    """The first `count` Higgs events as v1 JSON messages keyed by actor."""
    out: list[Message] = []
    with gzip.open(path, "rb") as lines:
        for number, line in enumerate(itertools.islice(lines, count), 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event), event
            out.append(event_message(event))
    return out


def event_message(event: Event) -> Message:
    return Message(
        SOURCES[SOURCE_FOR_KIND[event.kind]],
        event.actor.encode(),
        orjson.dumps(event_to_dict(event)),
        event.id,
    )


def decode_messages(messages: Iterable[Message]) -> list[Event]:
    from pipeline.codec import decode_json_event

    events = []
    for message in messages:
        event = decode_json_event(message.value)
        assert isinstance(event, Event)
        events.append(event)
    return events


def start_worker(
    deployment: Deployment,
    tmp: Path,
    loglevel: str = "warning",
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """A worker process of `deployment` (its own web port, data dir and log file).

    INFLUENCE_WORKER_SRC runs the worker from another checkout (e.g. `git archive` of an
    older commit), to compare two versions side by side on the same broker and stream.
    """
    port = next(_PORTS)
    log = tmp / f"worker-{deployment.name}-{port}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "worker", "--loglevel", loglevel],
        env={
            **deployment.env(),
            "INFLUENCE_WEB_PORT": str(port),
            "INFLUENCE_DATA_DIR": str(tmp / f"data-{port}"),
            **(env or {}),
        },
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=os.environ.get("INFLUENCE_WORKER_SRC", str(REPO)),
    )
    worker = WorkerProcess(process, log, port=port)
    deployment.workers.append(worker)
    return worker


def producer(server: str, linger_ms: int = 20) -> Any:
    """A confluent-kafka producer partitioning like Java clients and aiokafka (murmur2)."""
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": server,
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
            "batch.num.messages": 10_000,
            "compression.type": "none",
        }
    )


def produce_all(server: str, deployment: Deployment, messages: Iterable[Message]) -> float:
    """Produces every message (fast, unpaced); returns the seconds it took."""
    names = {
        "tweets": deployment.topics.tweets,
        "retweets": deployment.topics.retweets,
        "mentions": deployment.topics.mentions,
    }
    p = producer(server)
    started = time.perf_counter()
    for message in messages:
        while True:
            try:
                p.produce(names[message.topic], message.value, message.key)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} messages not delivered")
    return time.perf_counter() - started


@dataclass
class Tail:
    """Reads a topic from its beginning in a thread; records each message's receive time."""

    server: str
    topic: str
    partitions: int
    keep_values: bool = False
    received: list[float] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Tail:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as Tp

        consumer = Consumer(
            {
                "bootstrap.servers": self.server,
                "group.id": f"tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
            }
        )
        consumer.assign([Tp(self.topic, p, 0) for p in range(self.partitions)])
        try:
            while not self._stop.is_set():
                batch = consumer.consume(1_000, 0.005)  # short: receive times are latencies
                now = time.time()
                for message in batch:
                    if message.error():
                        continue
                    self.received.append(now)
                    if self.keep_values:
                        self.values.append(message.value())
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wait_quiet(self, quiet_s: float = 3.0, timeout: float = 600.0) -> None:
        """Until nothing new arrived for `quiet_s` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.received) != seen:
                seen, since = len(self.received), time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.2)


async def _group_lag(server: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=server)
    consumer = AIOKafkaConsumer(bootstrap_servers=server)
    await admin.start()
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(tps)
        return {tp: ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in tps}
    finally:
        await admin.close()
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def wait_group_done(
    server: str,
    group: str,
    topics: list[str],
    slack: Callable[[str], int] = lambda topic: 0,
    timeout: float = 1800.0,
    alive: Callable[[], bool] = lambda: True,
    poll_s: float = 0.5,
) -> float:
    """Polls the group's committed offsets until every partition of `topics` is at its end
    (within `slack(topic)`, e.g. transaction markers) for 3 polls; returns the wall time of the
    first of those polls."""
    deadline = time.monotonic() + timeout
    stable, first_done = 0, 0.0
    previous: dict[TopicPartition, int] | None = None
    while time.monotonic() < deadline:
        lag = asyncio.run(_group_lag(server, group, topics))
        done = all(0 <= n <= slack(tp.topic) for tp, n in lag.items())
        if done and lag == previous:
            stable += 1
        elif done:
            stable, first_done = 1, time.time()
        else:
            stable = 0
        if stable >= 3:
            return first_done
        if not alive():
            raise RuntimeError("the consumer process died")
        previous = lag
        time.sleep(poll_s)
    raise TimeoutError(f"group {group} not at the end of {topics} in {timeout}s: lag {previous}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process so far (start-up included)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_bytes(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


async def _delete_containing(server: str, part: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=server)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if part in t]
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100])
        return names
    finally:
        await admin.close()


def delete_topics_containing(server: str, part: str) -> list[str]:
    """Deletes every topic whose name contains `part` (a run's deployment name: its own topics,
    and the internal topics of the apps it ran, named after it); returns their names."""
    return asyncio.run(asyncio.wait_for(_delete_containing(server, part), 60))


def chunks(items: list[Message], size: int) -> Iterator[list[Message]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

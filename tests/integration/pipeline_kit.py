"""Driving real workers against the real broker: processes, producing, waiting, reading back.

Each test gets its own app id and topic names, so tests sharing one broker never see each
other's messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaError,
)

from pipeline.settings import Topics
from pipeline.steps import Stored, decode_stored
from scoring import Event
from scoring.events import event_to_dict


def free_port() -> int:
    """A port nobody listens on now: test processes running side by side never collide (a
    fixed counter gave every pytest process the same ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TOPIC_FIELDS = tuple(f.name for f in fields(Topics))

DEPLOYED: list[tuple[str, str]] = []
"""(bootstrap, app id) of every deployment this test session made topics for: the session's
end deletes their topics (`delete_deployed_topics`), so tests leave nothing on the broker."""


@dataclass
class Deployment:
    """One isolated pipeline deployment: its app id, topics and partition count."""

    bootstrap: str
    name: str
    partitions: int
    guarantee: str = "exactly_once"
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        defaults = Topics()
        return Topics(**{f: f"{self.name}-{getattr(defaults, f)}" for f in TOPIC_FIELDS})

    def env(self) -> dict[str, str]:
        topics = self.topics
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "INFLUENCE_APP_ID": self.name,
            "INFLUENCE_PARTITIONS": str(self.partitions),
            "INFLUENCE_STORE": "memory://",
            "INFLUENCE_PROCESSING_GUARANTEE": self.guarantee,
        }
        for name in TOPIC_FIELDS:
            env[f"INFLUENCE_TOPIC_{name.upper()}"] = getattr(topics, name)
        return env

    def create_topics(self) -> None:
        DEPLOYED.append((self.bootstrap, self.name))
        subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "topics", "create"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start_worker(self, tmp: Path, *args: str) -> WorkerProcess:
        """A worker process; `args` are extra `influence worker` options (--shadow, --from...)."""
        port = free_port()
        log = tmp / f"worker-{port}.log"
        env = {
            **self.env(),
            "INFLUENCE_WEB_PORT": str(port),
            "INFLUENCE_DATA_DIR": str(tmp / f"data-{port}"),
        }
        handle = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", "--loglevel", "warning", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        worker = WorkerProcess(process, log, port=port)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    @property
    def changelog(self) -> str:
        return f"{self.name}-users-changelog"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False
    """Ended by SIGKILL: by `kill9`, or by `stop` when SIGTERM did not end it in time."""
    stopped: bool = False
    """Asked to stop (`stop`): its end is no crash."""
    port: int = 0
    """The worker's web port (/metrics, health, query API) on 127.0.0.1."""

    def kill9(self) -> None:
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped = True
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.process.kill()
            self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def new_deployment(
    bootstrap: str, prefix: str, partitions: int = 4, guarantee: str = "at_least_once"
) -> Deployment:
    """A deployment of its own on `bootstrap`: a fresh app id (`prefix` and a random part), so
    fresh topics, created here; its topics are deleted at the session's end."""
    deployment = Deployment(bootstrap, f"{prefix}{uuid.uuid4().hex[:10]}", partitions, guarantee)
    deployment.create_topics()
    return deployment


async def produce_events(bootstrap: str, topics: Topics, events: Iterable[Event]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    count = 0
    try:
        for event in events:
            await producer.send(
                topics.for_kind(event.kind),
                key=event.actor.encode(),
                value=orjson.dumps(event_to_dict(event)),
            )
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def produce_raw(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


COORDINATOR_ATTEMPTS = 30


async def _lag(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        for attempt in range(COORDINATOR_ATTEMPTS):
            try:
                committed = await admin.list_consumer_group_offsets(group)
                break
            except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                # A fresh broker creates its offsets topic for the first group: ask again.
                if attempt == COORDINATOR_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(1.0)
        ends = await consumer.end_offsets(tps)
        return {tp: ends[tp] - max(0, committed[tp].offset if tp in committed else 0) for tp in tps}
    finally:
        await admin.close()
        await consumer.stop()


def wait_until_processed(deployment: Deployment, timeout: float = 240.0) -> None:
    """Until every input is consumed and the repartition topic is drained.

    Each transactional producer (one per source partition) leaves a commit marker after its last
    message in a repartition partition, so a drained partition may show a lag of up to one per
    source partition; the lag must also stay unchanged for a few polls.
    """
    topics = deployment.topics
    inputs = [TopicPartition(t, p) for t in topics.inputs for p in range(deployment.partitions)]
    internal = [
        TopicPartition(topic, p)
        for topic in (topics.engagements, topics.forwarded)
        for p in range(deployment.partitions)
    ]
    deadline = time.monotonic() + timeout
    previous: dict[TopicPartition, int] | None = None
    stable = 0
    while time.monotonic() < deadline:
        lag = asyncio.run(_lag(deployment.bootstrap, deployment.name, inputs + internal))
        done = all(lag[tp] == 0 for tp in inputs) and all(
            0 <= lag[tp] <= deployment.partitions for tp in internal
        )
        stable = stable + 1 if done and lag == previous else 0
        if stable >= 3:
            return
        previous = lag
        for worker in deployment.workers:
            if not worker.killed and not worker.stopped and not worker.alive():
                raise AssertionError(f"a worker died:\n{worker.tail()}")
        time.sleep(2.0)
    logs = "\n".join(w.tail() for w in deployment.workers)
    raise AssertionError(f"not processed within {timeout}s; lag {previous}\n{logs}")


async def _read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        idle = 0
        while idle < 2:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                idle += 1
                continue
            idle = 0
            for _, messages in sorted(batch.items(), key=lambda kv: kv[0].partition):
                out.extend((m.key, m.value, m.partition) for m in messages)
    finally:
        await consumer.stop()
    return out


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
    return asyncio.run(_read_topic(bootstrap, topic))


def read_users(deployment: Deployment) -> dict[str, Stored]:
    """Final user states, from the table's changelog (last value per key wins)."""
    latest: dict[bytes, bytes | None] = {}
    for key, value, _ in read_topic(deployment.bootstrap, deployment.changelog):
        assert key is not None
        latest[key] = value
    return {k.decode(): decode_stored(v) for k, v in latest.items() if v is not None}


async def _delete_topics(bootstrap: str, prefixes: list[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100])
        return len(names)
    finally:
        await admin.close()


def delete_deployed_topics() -> int:
    """Deletes every topic of the deployments this session made (the app id's topics, its
    changelog and Faust's internal ones all start with `<app id>-`); returns how many."""
    by_server: dict[str, list[str]] = {}
    for server, name in DEPLOYED:
        by_server.setdefault(server, []).append(f"{name}-")
    DEPLOYED.clear()
    deleted = 0
    for server, prefixes in by_server.items():
        try:
            deleted += asyncio.run(asyncio.wait_for(_delete_topics(server, prefixes), 60))
        except (TimeoutError, OSError, KafkaError) as exc:
            print(f"topics on {server} not deleted (that broker is gone?): {exc!r}")
    return deleted

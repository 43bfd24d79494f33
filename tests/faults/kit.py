"""What every fault test checks after the fault: the run's outcome equals an uninterrupted one.

- integer counters exact and final scores within 0.01 of the embedded engine on the same
  events (`assert_same_as_embedded`, as tests/integration/test_pipeline.py compares);
- no score event missing: every user whose state says a score was published has a score
  event, and that user's last score event carries exactly the published score.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Callable
from functools import cache

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from benchmarks.harness import start_worker
from pipeline.codec import decode_higgs_line
from pipeline.engine import Engine
from scoring import Event, Model
from tests.conftest import HIGGS
from tests.integration.pipeline_kit import (
    Deployment,
    WorkerProcess,
    _lag,
    read_topic,
    read_users,
)
from tests.integration.test_pipeline import assert_same_as_embedded

__all__ = ["assert_outcome_exact", "end_count", "higgs_events", "rewind", "start_worker"]


@cache
def higgs_events(count: int) -> tuple[Event, ...]:
    events = []
    with gzip.open(HIGGS, "rb") as lines:
        for number, line in enumerate(itertools.islice(lines, count), 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event)
            events.append(event)
    return tuple(events)


def embedded(events: tuple[Event, ...] | list[Event], model: Model) -> Engine:
    engine = Engine(model)
    for event in events:
        engine.process(event)
    return engine


def assert_outcome_exact(deployment: Deployment, engine: Engine, model: Model) -> None:
    """Counters and scores as without the fault; no score event missing."""
    assert_same_as_embedded(deployment, engine, model)
    users = read_users(deployment)
    last: dict[str, float] = {}
    for key, value, _ in read_topic(deployment.bootstrap, deployment.topics.score_changes):
        assert key is not None
        if value is not None:
            last[key.decode()] = orjson.loads(value)["score"]
    published = {u: s.state.published for u, s in users.items() if s.state.published is not None}
    missing = sorted(set(published) - set(last))
    assert not missing, f"{len(missing)} users published a score with no score event: {missing[:5]}"
    stale = [(u, last[u], p) for u, p in published.items() if abs(last[u] - p) > 1e-9]
    assert not stale, f"{len(stale)} users' last score event is not their score: {stale[:5]}"
    assert set(last) <= set(users), sorted(set(last) - set(users))[:5]


async def _end_count(server: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=server)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def end_count(server: str, topic: str, partitions: int) -> int:
    """Messages ever written to `topic` (the sum of its end offsets)."""
    return asyncio.run(_end_count(server, topic, partitions))


def crashed(worker: WorkerProcess) -> bool:
    """Faust logs an agent's crash and restarts the agent: the process stays alive."""
    return b"Crashed reason=" in worker.log.read_bytes()


def wait_processed(deployment: Deployment, timeout: float = 300.0) -> None:
    """`wait_until_processed`, failing at once when an agent of a worker crashes."""
    topics = deployment.topics
    tps = [
        TopicPartition(t, p)
        for t in (*topics.inputs, topics.engagements, topics.forwarded)
        for p in range(deployment.partitions)
    ]
    deadline = time.monotonic() + timeout
    stable, previous = 0, None
    while time.monotonic() < deadline:
        for worker in deployment.workers:
            assert not crashed(worker), f"an agent crashed:\n{worker.tail()}"
            assert worker.killed or worker.stopped or worker.alive(), (
                f"a worker died:\n{worker.tail()}"
            )
        lag = asyncio.run(_lag(deployment.bootstrap, deployment.name, tps))
        stable = stable + 1 if all(n == 0 for n in lag.values()) and lag == previous else 0
        if stable >= 3:
            return
        previous = lag
        time.sleep(1.0)
    raise AssertionError(f"not processed in {timeout}s: lag {previous}")


def wait_for(
    condition: Callable[[], bool], workers: list[WorkerProcess], timeout: float = 300.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            assert worker.alive(), f"a worker died:\n{worker.tail()}"
        assert time.monotonic() < deadline, "\n".join(w.tail() for w in workers)
        time.sleep(0.25)


async def _rewind(server: str, group: str, tps: list[TopicPartition], fraction: float) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=server, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(int(ends[tp] * fraction), "") for tp in tps})
    finally:
        await consumer.stop()


def rewind(deployment: Deployment, topics: tuple[str, ...], fraction: float) -> None:
    """Moves the group's committed offsets of `topics` back to `fraction` of each partition
    (the group must be empty).

    Not to 0: a worker that lost its state and reprocessed the whole input would end with the
    right counters too; replaying only the second half tells the two apart.
    """
    tps = [TopicPartition(t, p) for t in topics for p in range(deployment.partitions)]
    asyncio.run(_rewind(deployment.bootstrap, deployment.name, tps, fraction))

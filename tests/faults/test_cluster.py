"""Faults on a real three-node cluster: brokers killed with kill -9 while the stream flows.

Every topic has three replicas and `min.insync.replicas` 2 (`influence topics create`, and the
cluster's defaults for Faust's changelog and internal topics); producers and workers write with
acks=all and idempotence. After each fault the outcome must equal an uninterrupted run
(`kit.assert_outcome_exact`: counters exact, scores within 0.01 of the embedded engine, no
score event missing), and no partition may stall longer than `STALL_BOUND_S` while it has
messages to read (`cluster_kit.StallWatch`, sampling once a second during the run: a consumer
that stops silently fails here). Each test prints its time to recover.

CI sizes by default (a 15,000-event Higgs prefix, the broker down `DOWN_S` = 20 s);
`INFLUENCE_FULL_FAULTS=1` runs 200,000 events and the broker down a minute, as the issue asks.
Marked `cluster` (left out of the default run by pyproject's addopts: `-m cluster` runs them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from scoring import Model
from tests.faults.cluster_kit import Cluster, StallWatch, replicas
from tests.faults.conftest import FULL
from tests.faults.kit import (
    assert_outcome_exact,
    embedded,
    end_count,
    higgs_events,
    start_worker,
    wait_for,
    wait_processed,
)
from tests.integration.pipeline_kit import (
    Deployment,
    WorkerProcess,
    _lag,
    new_deployment,
    produce_events,
)

pytestmark = pytest.mark.cluster

EVENTS = 200_000 if FULL else 15_000
DOWN_S = 60.0 if FULL else 20.0
"""How long a killed broker stays down: the issue's minute at full size; 20 s in CI, still
twice the controller's 9 s broker session timeout, so its leaderships have moved away."""
WORKER_DOWN_S = 15.0
"""How long a killed worker stays down: past the group's 6 s session timeout."""
STALL_BOUND_S = 120.0
"""No partition with messages to read keeps its committed offset longer than this. A dead
broker is fenced after 9 s and its leaderships move; the group coordinator may move too (6 s
session timeout, a rebalance); a merge then waits up to `merge_max_wait_s` (30 s) for sources
that went quiet; on two cores shared with the three JVMs the rest is slack."""
PROCESS_TIMEOUT_S = 1800.0 if FULL else 600.0


@pytest.fixture
def deployments(cluster: Cluster) -> Iterator[Callable[[], Deployment]]:
    """Fresh deployments on the cluster (topics from `influence topics create`); their workers
    are stopped after the test, their topics deleted at the session's end."""
    made: list[Deployment] = []

    def make() -> Deployment:
        deployment = new_deployment(cluster.bootstrap, "cluster-", 4, "at_least_once")
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop_all()


def worker(deployment: Deployment, tmp: Path, name: str) -> WorkerProcess:
    """A RocksDB worker with its own data directory, reused when it is started again."""
    env = {"INFLUENCE_STORE": "rocksdb://", "INFLUENCE_DATA_DIR": str(tmp / f"data-{name}")}
    return start_worker(deployment, tmp, loglevel="info", env=env)


def score_events(deployment: Deployment) -> int:
    return end_count(deployment.bootstrap, deployment.topics.score_changes, deployment.partitions)


def report(what: str, watch: StallWatch, fault: float, **figures: float) -> None:
    longest = watch.longest()
    print(
        f"\n{what}: recovered {watch.recovered_after(fault):.1f}s after the fault; longest "
        f"stall {longest.seconds if longest else 0.0:.1f}s ({longest.tp if longest else '-'}); "
        + ", ".join(f"{k} {v:.1f}s" for k, v in figures.items())
        + f"; {watch.samples} samples, {watch.missed} missed, {watch.held} held in event order"
    )


def assert_no_long_stall(watch: StallWatch) -> None:
    longest = watch.longest()
    assert longest is None or longest.seconds <= STALL_BOUND_S, (
        f"{longest.tp} stalled {longest.seconds:.1f}s with messages to read"
    )


def assert_fully_replicated(cluster: Cluster, deployment: Deployment) -> None:
    """The inputs and the changelog (made by Faust) have three replicas, all in sync."""
    for topic in (*deployment.topics.inputs, deployment.changelog):
        assert replicas(cluster.bootstrap, topic) == [(3, 3)] * deployment.partitions, topic


def test_kill_9_of_the_broker_leading_most_inputs_mid_stream(
    cluster: Cluster, deployments: Callable[[], Deployment], model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    half = len(events) // 2
    engine = embedded(events, model)
    deployment = deployments()
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[:half]))
    a = worker(deployment, tmp_path, "a")
    watch = StallWatch(deployment).start()
    try:
        first_half = embedded(events[:half], model).stats.score_changes
        wait_for(lambda: score_events(deployment) >= first_half // 3, [a])
        assert_fully_replicated(cluster, deployment)
        node = cluster.most_leading(deployment.topics.inputs)
        fault = time.monotonic()
        cluster.kill9(node)
        # The second half is produced while the leader is down: acks=all on two replicas.
        asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[half:]))
        produced = time.monotonic() - fault
        time.sleep(max(0.0, fault + DOWN_S - time.monotonic()))
        restart = cluster.start_node(node)
        wait_processed(deployment, timeout=PROCESS_TIMEOUT_S)
        done = time.monotonic() - fault
    finally:
        watch.stop()
    report(
        f"broker {node} (most input leaders) kill -9",
        watch,
        fault,
        produce_while_down=produced,
        node_restart=restart,
        fault_to_processed=done,
    )
    assert a.alive(), a.tail()
    assert_outcome_exact(deployment, engine, model)
    assert_no_long_stall(watch)


def test_kill_9_of_a_broker_and_a_worker_at_the_same_moment(
    cluster: Cluster, deployments: Callable[[], Deployment], model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    engine = embedded(events, model)
    deployment = deployments()
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))
    a, b = worker(deployment, tmp_path, "a"), worker(deployment, tmp_path, "b")
    watch = StallWatch(deployment).start()
    try:
        wait_for(lambda: score_events(deployment) >= engine.stats.score_changes // 5, [a, b])
        node = cluster.most_leading([deployment.changelog])
        broker_pid = cluster.pid(node)
        fault = time.monotonic()
        os.kill(broker_pid, signal.SIGKILL)
        b.kill9()
        time.sleep(max(0.0, fault + WORKER_DOWN_S - time.monotonic()))
        worker(deployment, tmp_path, "b")  # its RocksDB store again
        time.sleep(max(0.0, fault + DOWN_S - time.monotonic()))
        restart = cluster.start_node(node)
        wait_processed(deployment, timeout=PROCESS_TIMEOUT_S)
        done = time.monotonic() - fault
    finally:
        watch.stop()
    report(
        f"broker {node} (most changelog leaders) and a worker kill -9",
        watch,
        fault,
        node_restart=restart,
        fault_to_processed=done,
    )
    assert a.alive(), a.tail()
    assert_outcome_exact(deployment, engine, model)
    assert_no_long_stall(watch)


ROTATE_S = 20.0
"""Every this often one of the three workers leaves and a fresh one joins (the issue's 20 s)."""
ROTATIONS = 1_000 if FULL else 4
"""Rotations at most before the group is left to finish: at full size, until the stream is
processed; in CI four (SIGTERM, kill -9, SIGTERM, kill -9). On this 2-core machine shared by
five sessions a group rotated every 20 s moved through a 15,000-event backlog at ~10 events/s
(each rotation is a rebalance and a table recovery), so "until processed" took too long."""
MIN_ROTATIONS = 2
"""A rotation test whose stream ends before this many rotations tested nothing: it fails."""
STANDBY_REPLICAS = "1"
"""Faust's `table_standby_replicas` (TABLE_STANDBY_REPLICAS): each table partition is also
kept, from its changelog, on one worker that does not own it."""


def processed(deployment: Deployment) -> bool:
    """Every input, forwarded and engagement partition read to its end (one look, no wait)."""
    topics = deployment.topics
    tps = [
        TopicPartition(t, p)
        for t in (*topics.inputs, topics.engagements, topics.forwarded)
        for p in range(deployment.partitions)
    ]
    lag = asyncio.run(_lag(deployment.bootstrap, deployment.name, tps))
    return all(n == 0 for n in lag.values())


def test_three_workers_with_standbys_one_leaving_and_one_joining_every_20_s(
    cluster: Cluster, deployments: Callable[[], Deployment], model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    engine = embedded(events, model)
    deployment = deployments()
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))

    def joined(n: int) -> WorkerProcess:
        env = {
            "INFLUENCE_STORE": "rocksdb://",
            "INFLUENCE_DATA_DIR": str(tmp_path / f"data-{n}"),
            "TABLE_STANDBY_REPLICAS": STANDBY_REPLICAS,
        }
        return start_worker(deployment, tmp_path, loglevel="info", env=env)

    running = [joined(n) for n in range(3)]
    watch = StallWatch(deployment).start()
    started = time.monotonic()
    rotations: list[str] = []
    try:
        while len(rotations) < ROTATIONS:
            time.sleep(ROTATE_S)
            if processed(deployment):
                break
            leaving = running.pop(0)  # the oldest leaves: SIGTERM and kill -9 in turn
            if len(rotations) % 2 == 0:
                leaving.stop(timeout=60)
                rotations.append("SIGTERM" if not leaving.killed else "SIGTERM→SIGKILL")
            else:
                leaving.kill9()
                rotations.append("kill -9")
            running.append(joined(3 + len(rotations)))
        rotated = time.monotonic() - started
        wait_processed(deployment, timeout=PROCESS_TIMEOUT_S)
    finally:
        watch.stop()
    report(
        f"three workers, {len(rotations)} rotations ({', '.join(rotations)})",
        watch,
        started,
        rotating=rotated,
        run=time.monotonic() - started,
    )
    assert len(rotations) >= MIN_ROTATIONS, f"the stream ended after {rotations}"
    assert all(w.alive() for w in running), "\n".join(w.tail() for w in running)
    assert_outcome_exact(deployment, engine, model)
    assert_no_long_stall(watch)


RECOVERY_STARTED = b"Restoring state from changelog topics"
RECOVERY_READ = b"Done reading from changelog topics"
"""Faust's log lines (info) at the start and the end of reading a table's changelog."""


def test_changelog_leaders_broker_down_during_a_workers_table_recovery(
    cluster: Cluster, deployments: Callable[[], Deployment], model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    half = len(events) // 2
    engine = embedded(events, model)
    deployment = deployments()
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[:half]))
    first = worker(deployment, tmp_path, "first")
    wait_processed(deployment, timeout=PROCESS_TIMEOUT_S)
    first.stop(timeout=60)
    fresh = worker(deployment, tmp_path, "fresh")  # an empty store: the whole changelog to read
    node = cluster.most_leading([deployment.changelog])
    broker_pid = cluster.pid(node)
    wait_for(lambda: RECOVERY_STARTED in fresh.log.read_bytes(), [fresh], timeout=300)
    watch = StallWatch(deployment).start()
    fault = time.monotonic()
    os.kill(broker_pid, signal.SIGKILL)
    during = RECOVERY_READ not in fresh.log.read_bytes()
    try:
        asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[half:]))
        time.sleep(max(0.0, fault + DOWN_S - time.monotonic()))
        restart = cluster.start_node(node)
        wait_processed(deployment, timeout=PROCESS_TIMEOUT_S)
        done = time.monotonic() - fault
    finally:
        watch.stop()
    report(
        f"broker {node} (most changelog leaders) kill -9 "
        f"{'during' if during else 'just after'} a fresh worker's table recovery",
        watch,
        fault,
        node_restart=restart,
        fault_to_processed=done,
    )
    assert during, "the fresh worker had read its changelog before the broker died"
    assert fresh.alive(), fresh.tail()
    assert_outcome_exact(deployment, engine, model)
    assert_no_long_stall(watch)

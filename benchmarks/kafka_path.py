"""Item 1: events/s through real worker processes on the real broker, against references
measured in the same run on the same messages: the embedded engine (the model alone, no
Kafka), a plain aiokafka consumer that only reads and orjson-decodes the input topics (what
the transport allows a Python consumer at all), and a Faust agent that only counts them
(`benchmarks.faust_floor`: what Faust delivers to an agent, the worker's own floor). The
worker runs on the compiled core (INFLUENCE_CORE=native), then once more on the Python core,
on a second copy of the topics.

The stream is produced into fresh topics first; then the workers start and the time runs from
the first score event received to the last one, once the group's committed offsets have
reached the end of the input and repartition topics.

    python -m benchmarks.kafka_path [--events 200000] [--floors] [--guarantee exactly_once]

`--floors`: only the compiled-core worker between the two counting agents (`noack_take`
before it, `take_events` after it), on one copy of the topics: the ratio to Faust's floor with
the floor measured on both sides of the worker, on a machine whose load moves.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks import harness
from benchmarks.harness import Message, Tail
from tests.integration.pipeline_kit import Deployment, new_deployment


@dataclass(frozen=True, slots=True)
class WorkerRun:
    """Workers consuming a pre-produced stream."""

    workers: int
    events: int
    seconds: float
    """First to last score event received."""
    seconds_to_commit: float
    """First score event to the group's committed offsets at the end of every topic."""
    score_events: int
    rss_bytes: int
    """Resident memory of the (first) worker at the end."""
    cpu_seconds: float = 0.0
    """CPU time of the (first) worker process at the end, start-up included: on a machine
    shared with other work, events per CPU second move less than events per second."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True, slots=True)
class PathResult:
    events: int
    produce_s: float
    worker: WorkerRun
    embedded_events_per_s: float
    embedded_score_changes: int
    transport_events_per_s: float
    faust_floor_events_per_s: float
    """A Faust agent that only counts the input messages (`benchmarks.faust_floor`)."""
    faust_floor_cpu_seconds: float
    """Its process's CPU time at the end, start-up included."""
    python_worker: WorkerRun | None = None
    """The same worker on the Python core (`worker` runs the compiled one)."""
    faust_floor_noack_events_per_s: float | None = None
    """The counting agent taking batches as the worker's input agent does (`noack_take`)."""

    @property
    def ratio_embedded(self) -> float:
        return self.worker.events_per_s / self.embedded_events_per_s

    @property
    def ratio_transport(self) -> float:
        return self.worker.events_per_s / self.transport_events_per_s

    @property
    def ratio_floor(self) -> float:
        return self.worker.events_per_s / self.faust_floor_events_per_s


def run_workers(
    server: str,
    deployment: Deployment,
    count: int,
    events: int,
    tmp: Path,
    *,
    join_first: bool = False,
    messages: list[Message] | None = None,
    env: dict[str, str] | None = None,
) -> WorkerRun:
    """Starts `count` workers on `deployment` and times them through its input topics.

    With `join_first`, the workers join the group before `messages` are produced (so several
    workers do not rebalance in the middle of the measurement); otherwise the input must
    already be in the topics.
    """
    topics = deployment.topics
    tail = Tail(server, topics.score_changes, deployment.partitions).start()
    workers = [harness.start_worker(deployment, tmp, env=env) for _ in range(count)]
    try:
        if join_first:
            _wait_members(server, deployment.name, count)
            assert messages is not None
            harness.produce_all(server, deployment, messages)
        done = harness.wait_group_done(
            server,
            deployment.name,
            [*topics.inputs, topics.engagements],
            slack=lambda t: deployment.partitions if deployment.guarantee == "exactly_once" else 0,
            alive=lambda: all(w.alive() for w in workers),
        )
        tail.wait_quiet(3.0)
        rss = harness.rss_bytes(workers[0].process.pid)
        cpu = harness.cpu_seconds(workers[0].process.pid)
    except BaseException:
        for worker in workers:
            print(worker.tail(), file=sys.stderr)
        raise
    finally:
        tail.stop()
        deployment.stop_all()
    if not tail.received:
        raise RuntimeError("no score events")
    first, last = tail.received[0], tail.received[-1]
    return WorkerRun(count, events, last - first, done - first, len(tail.received), rss, cpu)


def _wait_members(server: str, group: str, count: int) -> None:
    """Until the group is stable with `count` members that have partitions assigned."""

    async def describe() -> tuple[str, int]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=server)
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([group])
            (g,) = response.groups
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            return g[2], len(g[5])
        finally:
            await admin.close()

    deadline = time.monotonic() + 180
    stable = 0
    while time.monotonic() < deadline:
        state, members = asyncio.run(describe())
        stable = stable + 1 if (state == "Stable" and members == count) else 0
        if stable >= 3:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{count} workers did not form a stable group")


async def _plain_consumer(
    server: str, topics: tuple[str, ...], total: int, decode: bool = True
) -> float:
    """Messages/s of a plain aiokafka consumer reading `topics` (orjson-decoding each value
    unless not `decode`), from the start of the first fetch to the last message."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=server,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=10_000,
    )
    await consumer.start()
    loads = orjson.loads
    try:
        count, first = 0, time.perf_counter()  # fetching the first batch counts too
        while count < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                if not decode:
                    count += len(messages)
                    continue
                for message in messages:
                    loads(message.value)
                    count += 1
        return count / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def transport_limit(server: str, deployment: Deployment, total: int) -> float:
    """Events/s of a plain aiokafka consumer reading and decoding the input topics."""
    return asyncio.run(_plain_consumer(server, deployment.topics.inputs, total))


def faust_floor(
    deployment: Deployment, total: int, noack: bool = False, app_id: str | None = None
) -> tuple[float, float]:
    """Messages/s of a Faust agent that only counts the input topics, in its own process, and
    the CPU seconds that process used; `noack`: batches by `noack_take` (the worker's);
    `app_id`: the agent's app id (Faust's topics start with it), else a random one, whose
    topics (Faust's `__assignor-__leader`) are deleted after the run."""
    own_topics = app_id is None
    app_id = app_id or f"bench-faust-floor-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        "-m",
        "benchmarks.faust_floor",
        "--topics",
        ",".join(deployment.topics.inputs),
        "--total",
        str(total),
        "--partitions",
        str(deployment.partitions),
        *(["--noack"] if noack else []),
        "--app-id",
        app_id,
    ]
    done = subprocess.run(
        command, env=deployment.env(), capture_output=True, timeout=1800, cwd=harness.REPO
    )
    if own_topics:
        harness.delete_topics_containing(deployment.bootstrap, app_id)
    # Faust's worker logs what the agent prints (its stdout redirect): the line is in either
    found = re.findall(rb'\{"messages":[^}]*\}', done.stdout + done.stderr)
    if not found:
        raise RuntimeError(f"the counting Faust agent gave no result: {done.stderr[-2000:]!r}")
    result = orjson.loads(found[-1])
    return float(result["messages"]) / float(result["seconds"]), float(result["cpu_seconds"])


def embedded(messages: list[Message]) -> tuple[float, int]:
    """Events/s and score changes of the embedded engine on the same message bytes."""
    from pipeline.codec import decode_json_event
    from pipeline.engine import Engine, long_lived_states
    from scoring import Event, load_model

    engine = Engine(load_model())
    values = [m.value for m in messages]
    started = time.perf_counter()
    with long_lived_states():
        for value in values:
            event = decode_json_event(value)
            if isinstance(event, Event):
                engine.process(event)
    seconds = time.perf_counter() - started
    return len(values) / seconds, engine.stats.score_changes


def run(
    server: str,
    messages: list[Message],
    tmp: Path,
    *,
    python_core: bool = True,
    guarantee: str = "at_least_once",
) -> tuple[PathResult, Deployment]:
    """The measurements, one after the other; the deployment's topics stay for reuse. With
    `python_core`, the worker on the Python core last, on a copy of the topics. `guarantee`:
    the workers' INFLUENCE_PROCESSING_GUARANTEE."""
    deployment = new_deployment(server, "bench-path-", guarantee=guarantee)
    produce_s = harness.produce_all(server, deployment, messages)
    transport = transport_limit(server, deployment, len(messages))
    floor, floor_cpu = faust_floor(deployment, len(messages))
    floor_noack, _ = faust_floor(deployment, len(messages), noack=True)
    native = {"INFLUENCE_CORE": "native"}
    worker = run_workers(server, deployment, 1, len(messages), tmp, env=native)
    python = None
    if python_core:
        copy = new_deployment(server, "bench-path-py-", guarantee=guarantee)
        harness.produce_all(server, copy, messages)
        python = run_workers(server, copy, 1, len(messages), tmp, env={"INFLUENCE_CORE": "python"})
        harness.delete_topics_containing(server, copy.name)
    embedded_rate, changes = embedded(messages)
    result = PathResult(
        len(messages),
        produce_s,
        worker,
        embedded_rate,
        changes,
        transport,
        floor,
        floor_cpu,
        python,
        floor_noack,
    )
    return result, deployment


def floors(server: str, messages: list[Message], guarantee: str = "at_least_once") -> int:
    deployment = new_deployment(server, "bench-floors-", guarantee=guarantee)
    try:
        harness.produce_all(server, deployment, messages)
        total = len(messages)
        noack, noack_cpu = faust_floor(deployment, total, noack=True)
        with tempfile.TemporaryDirectory() as tmp:
            env = {"INFLUENCE_CORE": "native"}
            worker = run_workers(server, deployment, 1, total, Path(tmp), env=env)
        take, take_cpu = faust_floor(deployment, total)
    finally:
        harness.delete_topics_containing(server, deployment.name)
    print(
        f"counting agent (noack_take) {noack:,.0f} msg/s ({noack_cpu:.1f} CPU s), "
        f"compiled-core worker {worker.events_per_s:,.0f} events/s ({worker.cpu_seconds:.1f} "
        f"CPU s), counting agent (take_events) {take:,.0f} msg/s ({take_cpu:.1f} CPU s); "
        f"worker / agent: {worker.events_per_s / noack:.3f} (noack_take), "
        f"{worker.events_per_s / take:.3f} (take_events)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--floors", action="store_true", help="the worker between two floors")
    parser.add_argument(
        "--guarantee", choices=("at_least_once", "exactly_once"), default="at_least_once"
    )
    args = parser.parse_args(argv)
    server = harness.bootstrap()
    messages = harness.higgs_messages(args.events)
    if args.floors:
        return floors(server, messages, args.guarantee)
    with tempfile.TemporaryDirectory() as tmp:
        result, deployment = run(server, messages, Path(tmp), guarantee=args.guarantee)
    harness.delete_topics_containing(server, deployment.name)  # run alone: nothing reuses them
    print(result)
    python = result.python_worker
    print(
        f"worker (native core) {result.worker.events_per_s:,.0f} events/s, "
        f"python core {python.events_per_s if python else float('nan'):,.0f}, "
        f"counting Faust agent {result.faust_floor_events_per_s:,.0f}, embedded "
        f"{result.embedded_events_per_s:,.0f}, transport {result.transport_events_per_s:,.0f}; "
        f"ratio to the Faust floor {result.ratio_floor:.3f}, to embedded "
        f"{result.ratio_embedded:.3f}; CPU seconds: worker {result.worker.cpu_seconds:.1f}, "
        f"counting agent {result.faust_floor_cpu_seconds:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

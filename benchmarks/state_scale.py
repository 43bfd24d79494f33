"""Item 3: a generated population through one worker: state bytes per user, worker RSS, and
how long a restarted worker takes to recover its table from the changelog.

The population is as cheap as a population can be: event i is a retweet by `a<i>` of `u<i>`,
so every event makes two new users (one acting, one engaged) and N users cost N/2 events.
Each user's stored record is what the worker writes to the changelog: the state plus its
per-source offsets. Recovery is timed from the restarted worker's process start to Faust's
"Worker ready" (the table rebuilt from the changelog into a fresh memory store, the worst
case: a RocksDB store on the same disk would only read what it missed).

    python -m benchmarks.state_scale [--users 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks import harness
from benchmarks.harness import Message
from tests.integration.pipeline_kit import new_deployment

TS0 = 1_735_689_600_000
READY = b"Worker ready"


@dataclass(frozen=True, slots=True)
class ScaleResult:
    users: int
    events: int
    process_s: float
    """Worker start to the group's offsets at the end."""
    changelog_records: int
    stored_users: int
    value_bytes_per_user: float
    key_bytes_per_user: float
    rss_bytes: int
    """The worker's RSS once the population is in (memory store + decoded-user cache)."""
    recovery_s: float | None
    """None: the restarted worker was not ready within the timeout (Faust's recovery hung)."""
    recovered_rss_bytes: int


def population(users: int) -> list[Message]:
    """users/2 retweets, each by a new actor of a new target, one second apart."""
    out = []
    for i in range(users // 2):
        actor = f"a{i}"
        value = orjson.dumps(
            {
                "id": f"p{i}",
                "kind": "retweet",
                "ts": TS0 + i * 1000,
                "actor": actor,
                "target": f"u{i}",
            }
        )
        out.append(Message("retweets", actor.encode(), value, f"p{i}"))
    return out


def read_changelog(server: str, topic: str, partitions: int) -> tuple[int, dict[bytes, int]]:
    """(records, last value size per key) of the changelog, read with librdkafka."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": server, "group.id": "scale-reader", "enable.auto.commit": False}
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(partitions)
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    sizes: dict[bytes, int] = {}
    records, remaining = 0, set(p for p, end in ends.items() if end > 0)
    while remaining:
        for message in consumer.consume(10_000, 1.0):
            if message.error():
                continue
            records += 1
            key, value = message.key(), message.value()
            if value is None:
                sizes.pop(key, None)
            else:
                sizes[key] = len(value)
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
    consumer.close()
    return records, sizes


def wait_log(path: Path, needle: bytes, started: float, timeout: float) -> float:
    """Seconds from `started` (time.monotonic) until `needle` appears in the log."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if needle in path.read_bytes():
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"{needle!r} not in {path} after {timeout}s")


def run(server: str, users: int, tmp: Path, recovery_timeout: float = 300.0) -> ScaleResult:
    messages = population(users)
    deployment = new_deployment(server, "bench-scale-")
    topics = deployment.topics
    harness.produce_all(server, deployment, messages)
    started = time.monotonic()
    worker = harness.start_worker(deployment, tmp)
    harness.wait_group_done(
        server,
        deployment.name,
        [*topics.inputs, topics.engagements],
        alive=worker.alive,
        timeout=3600,
    )
    process_s = time.monotonic() - started
    print(f"  processed {len(messages):,} events in {process_s:.0f} s", flush=True)
    rss = harness.rss_bytes(worker.process.pid)
    worker.stop()
    deployment.workers.remove(worker)
    records, sizes = read_changelog(server, deployment.changelog, deployment.partitions)
    print(f"  changelog: {records:,} records, {len(sizes):,} users", flush=True)

    started = time.monotonic()
    restarted = harness.start_worker(deployment, tmp, loglevel="info")
    try:
        recovery_s: float | None = wait_log(restarted.log, READY, started, recovery_timeout)
    except TimeoutError:
        recovery_s = None
        print(f"  the restarted worker was not ready in {recovery_timeout:.0f} s", flush=True)
    try:
        recovered_rss = harness.rss_bytes(restarted.process.pid)
    finally:
        deployment.stop_all()
        harness.delete_topics_containing(server, deployment.name)
    return ScaleResult(
        users,
        len(messages),
        process_s,
        records,
        len(sizes),
        sum(sizes.values()) / len(sizes),
        sum(len(k) for k in sizes) / len(sizes),
        rss,
        recovery_s,
        recovered_rss,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(harness.bootstrap(), args.users, Path(tmp))
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

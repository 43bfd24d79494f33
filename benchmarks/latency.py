"""Item 2: produce → score-change latency at a steady offered load.

A worker runs (joined and idle) before the stream starts; events are then produced at a fixed
rate, each one's produce wall time recorded by event id. A score event carries the id of the
event that caused it (`user:event_time:cause_id`, pipeline/codec.py), so its latency is its
receive time at a consumer minus that event's produce time. Decay-only events (cause
`decay:<day>`) have no producing event and are left out.

    python -m benchmarks.latency --rate 2000 [--seconds 40] [--guarantee exactly_once]
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
from benchmarks.harness import Message, Tail
from benchmarks.kafka_path import _wait_members
from tests.integration.pipeline_kit import Deployment, new_deployment


@dataclass(frozen=True, slots=True)
class LatencyResult:
    offered_per_s: float
    achieved_per_s: float
    """Produce rate actually reached (the producer loop runs on the same 2 cores)."""
    events: int
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    latencies_ms: tuple[float, ...]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paced_produce(
    server: str, deployment: Deployment, messages: list[Message], rate: float
) -> tuple[dict[str, float], float]:
    """Produces `messages` at `rate` per second; returns produce wall times by event id."""
    topics = deployment.topics
    names = {"tweets": topics.tweets, "retweets": topics.retweets, "mentions": topics.mentions}
    producer = harness.producer(server, linger_ms=1)
    produced: dict[str, float] = {}
    started = time.perf_counter()
    wall0 = time.time() - started
    for index, message in enumerate(messages):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay)
        produced[message.event_id] = wall0 + time.perf_counter()
        producer.produce(names[message.topic], message.value, message.key)
        producer.poll(0)
    producer.flush(60)
    return produced, len(messages) / (time.perf_counter() - started)


def run(
    server: str,
    messages: list[Message],
    rate: float,
    seconds: float,
    tmp: Path,
    guarantee: str = "at_least_once",
) -> LatencyResult:
    deployment = new_deployment(server, "bench-lat-", guarantee=guarantee)
    tail = Tail(server, deployment.topics.score_changes, deployment.partitions, True).start()
    harness.start_worker(deployment, tmp)
    try:
        _wait_members(server, deployment.name, 1)
        stream = messages[: int(rate * seconds)]
        produced, achieved = paced_produce(server, deployment, stream, rate)
        harness.wait_group_done(
            server,
            deployment.name,
            [*deployment.topics.inputs, deployment.topics.engagements],
            alive=lambda: all(w.alive() for w in deployment.workers),
        )
        tail.wait_quiet(2.0)
    finally:
        tail.stop()
        deployment.stop_all()
        harness.delete_topics_containing(server, deployment.name)
    latencies = []
    for received, value in zip(tail.received, tail.values, strict=True):
        if value is None:
            continue
        cause_id = orjson.loads(value)["id"].split(":", 2)[2]
        if cause_id.startswith("decay:"):
            continue
        latencies.append((received - produced[cause_id]) * 1000)
    return LatencyResult(
        rate,
        achieved,
        len(stream),
        len(latencies),
        percentile(latencies, 0.50),
        percentile(latencies, 0.90),
        percentile(latencies, 0.99),
        max(latencies),
        tuple(latencies),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, required=True, help="events/s offered")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--guarantee", choices=("at_least_once", "exactly_once"), default="at_least_once"
    )
    args = parser.parse_args(argv)
    server = harness.bootstrap()
    messages = harness.higgs_messages(int(args.rate * args.seconds))
    with tempfile.TemporaryDirectory() as tmp:
        result = run(server, messages, args.rate, args.seconds, Path(tmp), args.guarantee)
    print(
        f"offered {result.offered_per_s:,.0f}/s (achieved {result.achieved_per_s:,.0f}/s), "
        f"{result.samples} score events: p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f} ms,"
        f" p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

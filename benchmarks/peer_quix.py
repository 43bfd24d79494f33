"""Item 4: the same scoring core as a Quix Streams application, on the same topics and stream.

This is what a user would otherwise write: a dataframe over the three input topics (keyed by
actor), a stateful `apply` running the actor step (`scoring.apply_action`) on the actor's
state, `group_by` the target (Quix's repartition topic), a stateful `apply` running the target
step (`scoring.apply_engagement`, `scoring.detect_change`), and the score-change events
(`pipeline.codec.score_change_json`) to an output topic. Quix keeps each key's state in
RocksDB with a changelog topic, at-least-once, as our workers keep theirs.

Left out against our worker: the per-source offset guard and day-boundary decay events (the
Higgs stream's events carry no follower counts, so the actor step never changes a score
here). The app runs in its own process; the benchmark times it like our worker: first to last
score event received.

    python -m benchmarks.peer_quix --child BOOTSTRAP GROUP OUT STATE_DIR TOPIC...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import Tail
from benchmarks.kafka_path import WorkerRun
from tests.integration.pipeline_kit import Deployment


def build_app(server: str, group: str, inputs: list[str], output: str, state_dir: str) -> Any:
    """The Quix Streams application (not started)."""
    from quixstreams import Application
    from quixstreams.models import TopicConfig

    from pipeline.codec import decode_json_event, score_change_json
    from scoring import (
        Engagement,
        Event,
        apply_action,
        apply_engagement,
        detect_change,
        load_model,
        new_user_state,
    )
    from scoring.state import state_from_row, state_to_row

    model = load_model()
    app = Application(
        broker_address=server,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    config = TopicConfig(num_partitions=harness.PARTITIONS, replication_factor=1)

    def topic(name: str) -> Any:
        return app.topic(name, key_deserializer="bytes", value_deserializer="bytes", config=config)

    def act(value: bytes, state: Any) -> list[Any] | None:
        event = decode_json_event(value)
        if not isinstance(event, Event):
            return None
        row = state.get("user")
        user = state_from_row(row) if row is not None else new_user_state(event.ts)
        engagement = apply_action(user, event, model).engagement
        state.set("user", state_to_row(user))
        return list(engagement) if engagement is not None else None

    def receive(value: list[Any], state: Any) -> bytes | None:
        engagement = Engagement._make([*value[:-1], tuple(value[-1])])
        row = state.get("user")
        user = state_from_row(row) if row is not None else new_user_state(engagement.ts)
        apply_engagement(user, engagement, model)
        change = detect_change(engagement.target, user, user.last_ts, model, "engagement")
        state.set("user", state_to_row(user))
        if change is None:
            return None
        return score_change_json(change, engagement.id, model.model_version)

    frames = [app.dataframe(topic(name)) for name in inputs]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    sdf = sdf.apply(act, stateful=True).filter(lambda engagement: engagement is not None)
    sdf = sdf.group_by(lambda engagement: engagement[4], name="target")
    sdf = sdf.apply(receive, stateful=True).filter(lambda change: change is not None)
    sdf.to_topic(app.topic(output, value_serializer="bytes", key_serializer="str", config=config))
    return app


def run(server: str, deployment: Deployment, events: int, tmp: Path) -> WorkerRun:
    """The Quix app over `deployment`'s (already produced) input topics."""
    import subprocess
    import uuid

    group = f"quix-{uuid.uuid4().hex[:8]}"
    output = f"{group}-score-changes"
    topics = deployment.topics
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.peer_quix",
            "--child",
            server,
            group,
            output,
            str(tmp / group),
            *topics.inputs,
        ],
        stdout=(tmp / f"{group}.log").open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=harness.REPO,
    )
    tail = Tail(server, output, deployment.partitions)
    try:
        _wait_topic(server, output)
        tail.start()
        done = harness.wait_group_done(
            server, group, list(topics.inputs), alive=lambda: process.poll() is None
        )
        tail.wait_quiet(5.0)
        rss = harness.rss_bytes(process.pid)
    except BaseException:
        print((tmp / f"{group}.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        tail.stop()
        process.terminate()
        process.wait(60)
    first, last = tail.received[0], tail.received[-1]
    return WorkerRun(1, events, last - first, done - first, len(tail.received), rss)


def _wait_topic(server: str, topic: str, timeout: float = 120.0) -> None:
    """Until the app has created its output topic (the tail must not start before it)."""
    import time

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": server})
    deadline = time.monotonic() + timeout
    while topic not in admin.list_topics(timeout=10).topics:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Quix app did not create {topic}")
        time.sleep(0.5)


def main(argv: list[str]) -> int:
    if argv[:1] != ["--child"] or len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    server, group, output, state_dir, *inputs = argv[1:]
    build_app(server, group, inputs, output, state_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

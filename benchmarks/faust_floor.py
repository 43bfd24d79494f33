"""Faust's own floor: a Faust agent that only counts the input messages, in a process of its
own, configured as a worker's app is (`pipeline.kafka_app`: raw serialisers, the same
session timeouts, batches of `batch_max_events` within `batch_within_s`): by `take_events`
(Faust acknowledges each message), or with `--noack` by `noack_take`, the worker's own input
path (it acknowledges in its checkpoint), which costs Faust less per message.

A worker cannot read faster than Faust delivers to an agent, so the issue's target for one
worker is a fraction of this rate measured in the same run (`benchmarks.kafka_path`), not of
the embedded engine's. Timed from the first message counted to the last, as the worker is
from its first score event to its last.

    python -m benchmarks.faust_floor --topics tweets,retweets,mentions --total 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from typing import Any

import orjson

from pipeline.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", required=True, help="comma-separated input topics")
    parser.add_argument("--total", type=int, required=True, help="messages to count")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--noack",
        action="store_true",
        help="batches by noack_take, as the worker's input agent takes them (no per-message "
        "acknowledgement), instead of take_events",
    )
    parser.add_argument("--app-id", help="the app id (Faust's own topics start with it)")
    args = parser.parse_args(argv)
    import faust

    settings = Settings.from_env()
    server = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", settings.bootstrap_servers)
    app = faust.App(
        args.app_id or f"bench-faust-floor-{uuid.uuid4().hex[:8]}",
        broker=[f"kafka://{s}" for s in server.split(",")],
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="faust-floor-"),
        topic_partitions=args.partitions,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(*args.topics.split(","), value_type=bytes)
    batch, within = settings.batch_max_events, settings.batch_within_s
    seen: dict[str, Any] = {"count": 0, "first": None}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        take = stream.noack_take if args.noack else stream.take_events
        async for events in take(batch, within=within):
            if seen["first"] is None:
                seen["first"] = time.perf_counter()
            seen["count"] += len(events)
            if seen["count"] >= args.total:
                seconds = time.perf_counter() - seen["first"]
                cpu = time.process_time()  # the whole process's, start-up included
                line = {"messages": seen["count"], "seconds": seconds, "cpu_seconds": cpu}
                sys.stdout.write(orjson.dumps(line).decode() + "\n")
                sys.stdout.flush()
                os._exit(0)  # measured: no need to wait for Faust's orderly stop

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
    return 1  # the agent exits the process once it has counted everything


if __name__ == "__main__":
    sys.exit(main())

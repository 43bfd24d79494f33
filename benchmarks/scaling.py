"""Item 5: throughput with 1, 2 and 4 workers sharing the 4 partitions of one deployment.

Each count gets fresh topics; its workers join the group first and the stream is produced
once the group is stable, so no rebalance falls inside the measurement (time: first to last
score event received).

    python -m benchmarks.scaling [--events 100000] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import Message
from benchmarks.kafka_path import WorkerRun, run_workers
from tests.integration.pipeline_kit import new_deployment


def run(server: str, messages: list[Message], counts: list[int], tmp: Path) -> list[WorkerRun]:
    out = []
    for count in counts:
        deployment = new_deployment(server, f"bench-scale{count}-")
        out.append(
            run_workers(
                server, deployment, count, len(messages), tmp, join_first=True, messages=messages
            )
        )
        harness.delete_topics_containing(server, deployment.name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    messages = harness.higgs_messages(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        for result in run(harness.bootstrap(), messages, args.workers, Path(tmp)):
            print(f"{result.workers} workers: {result.events_per_s:,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One worker's per-event cost on the in-process driver (`pipeline.driver`: the production
topology, no broker), on each core: the first N Higgs events on 4 partitions, batches of
`batch_max_events`. CPU seconds of this process are reported beside wall seconds: on a machine
shared with other work they move less. `--profile` adds a cProfile of each run's top entries.

    python -m benchmarks.driver_core [--events 50000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

from benchmarks import harness
from pipeline.driver import Driver, driver_settings
from pipeline.outbox import Output
from scoring import load_model


def measure(core: str, messages: list[harness.Message], profile: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one worker scoring `messages` on `core`."""
    model = load_model()
    driver = Driver(model, driver_settings(4, core=core))
    driver.start("a")
    driver.assign({"a": range(4)})
    for m in messages:
        driver.produce(Output(m.topic, m.key, m.value, None))
    limit = driver.settings.batch_max_events
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(driver.run, limit)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    else:
        driver.run(limit)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    messages = harness.higgs_messages(args.events)
    for core in ("python", "native"):
        wall, cpu = measure(core, messages, args.profile)
        n = len(messages)
        print(
            f"{core}: {n / wall:,.0f} events/s wall, {cpu / n * 1e6:,.0f} µs CPU per event "
            f"({n / cpu:,.0f} events per CPU second)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GET /top and the /metrics scrape on the Higgs population, without a broker.

The whole Higgs stream is replayed by the compiled core; its 304,691 users are encoded into a
table as a worker stores them and fed to the leader boards by the scan a worker runs after an
assignment (`Leaders.scanned`). One worker owns every partition (the most users a worker can
hold) and has no user decoded in its cache: `top_answer` (the view's logic, no HTTP) ranks
n = 10, 100 and 1,000 at the stream's last event time, as right after the scan (the boards keep
a copy of their best-ranked users) and with every candidate decoded from the table; the figures
are medians of repeated calls. Every ranking is checked against
`influence replay --top` at that time (`pipeline.replay.top_scores`), and the full table scan
the view did before (decode every row, `rank_users` over every user) is timed once. The scrape
renders every metric with the state gauges read from the boards; the old scan of the table
for them is timed too. The table here is a dict: a worker's RocksDB store adds its lookups.

    python -m benchmarks.top_api [--input HIGGS.gz] [--partitions 4] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

from benchmarks.embedded import DEFAULT_INPUT
from pipeline.api.read_model import WorkerState
from pipeline.api.scrape import state_size
from pipeline.api.top import TopQuery, rank_users, top_answer
from pipeline.leaders import Leaders
from pipeline.metrics import PipelineMetrics
from pipeline.native_engine import NativeEngine
from pipeline.replay import top_scores
from pipeline.steps import Stored, decode_stored, encode_stored
from scoring import load_model, read_mass

SIZES = (10, 100, 1000)


class _TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class TopResult:
    users: int
    ranked: int
    partitions: int
    decode_s: float
    """Decoding every row, as the post-assignment scan did before the boards."""
    scan_s: float
    boards_mb: float
    update_us: float
    """Cost of one `Leaders.update` (bound and insertion) per engaged user: the write feed."""
    top_ms: dict[tuple[int, str], float] = field(default_factory=dict)
    """(n, how) -> median ms of one ranking: "kept" (as after the scan: the best-ranked users
    kept by the boards, the rest decoded from the table), "decoded" (every candidate)."""
    old_top_s: float = 0.0
    scrape_ms: float = 0.0
    old_state_scan_s: float = 0.0
    top10: list[tuple[float, str]] = field(default_factory=list)


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(path: Path = DEFAULT_INPUT, partitions: int = 4, repeat: int = 30) -> TopResult:
    model = load_model()
    engine = NativeEngine(model)
    with gzip.open(path, "rb") as stream:
        lines = stream.readlines()
    index = 0
    while index < len(lines):  # the whole stream scores in the compiled core
        index = engine.score_lines(lines, index, 1 if index == 0 else None, False)
        if index < len(lines):
            raise AssertionError(f"a Higgs line the compiled core left: {lines[index]!r}")
    now = engine.now
    assert now is not None
    states = {user: engine.states[user] for user in engine.states}
    table = {user.encode(): encode_stored(Stored(state)) for user, state in states.items()}

    class Table(dict[bytes, bytes]):
        name = "users"
        changelog_topic = SimpleNamespace(get_topic_name=lambda: "bench-users-changelog")

    started = time.perf_counter()  # what the scan after an assignment did before: decode
    for value in table.values():
        decode_stored(value)
    decode_s = time.perf_counter() - started
    leaders = Leaders(partitions, model)
    started = time.perf_counter()
    for key, value in table.items():
        leaders.scanned(key, value)
    scan_s = time.perf_counter() - started
    tracemalloc.start()
    probe = Leaders(partitions, model)
    for key, value in table.items():
        probe.scanned(key, value)
    boards_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    del probe
    engaged = [(u, s) for u, s in states.items() if s.received is not None]
    for _, state in engaged:  # a worker's step has just read the user: its caches are warm
        read_mass(state, state.last_ts, model)
    probe = Leaders(partitions, model)
    started = time.perf_counter()
    for user, state in engaged:
        probe.update(0, user, state, 1)
    update_us = (time.perf_counter() - started) / len(engaged) * 1e6
    del probe

    metrics = PipelineMetrics(model.model_version)
    for p in range(partitions):
        metrics.event_time(now, partition=p)
    tps = {_TP("bench-users-changelog", p) for p in range(partitions)}
    pipeline = SimpleNamespace(
        table=Table(table),
        caches={},
        clocks={},
        settings=SimpleNamespace(partitions=partitions),
        leaders=leaders,
        watched={},
    )
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: tps))
    worker = WorkerState(app, pipeline, metrics)
    metrics.state_provider = partial(state_size, worker)
    metrics.lag_provider = lambda: {("tweets", p): 0 for p in range(partitions)}

    async def no_peers(at: int | None) -> tuple[list[Any], int | None, bool]:
        return [], None, True

    def ranking(n: int) -> list[tuple[float, str]]:
        reply = asyncio.run(top_answer(worker, TopQuery(n, None, False), False, no_peers, "v"))
        body: Any = reply.body
        assert body["as_of"] == now
        return [(u["score"], u["user"]) for u in body["users"]]

    result = TopResult(
        len(states), len(engaged), partitions, decode_s, scan_s, boards_mb, update_us
    )
    for n in SIZES:
        expected = top_scores(engine, now, n)
        assert ranking(n) == expected, f"n={n}: not the replay's ranking"
        result.top_ms[(n, "kept")] = _median_ms(partial(ranking, n), repeat)

        def first_reads(n: int = n) -> None:
            for board in leaders.boards.values():
                board.kernels.clear()
            ranking(n)

        result.top_ms[(n, "decoded")] = _median_ms(first_reads, max(3, repeat // 5))
        assert ranking(n) == expected, f"n={n}: not the replay's ranking (decoded)"
    result.top10 = ranking(10)
    pipeline.caches = {}
    started = time.perf_counter()  # what the view did before: decode and read every user
    rows = list(pipeline.table.items())
    old = rank_users(((k.decode(), decode_stored(v).state, now) for k, v in rows), 10, None, model)
    result.old_top_s = time.perf_counter() - started
    assert [e.user for e in old] == [user for _, user in result.top10]
    result.scrape_ms = _median_ms(metrics.render, repeat)
    started = time.perf_counter()
    counted = sum(len(v) for v in list(pipeline.table.values()))
    result.old_state_scan_s = time.perf_counter() - started
    assert state_size(worker).state_bytes == counted
    assert state_size(worker).users == len(states)
    return result


def section(result: TopResult, command: str) -> str:
    ms = result.top_ms
    rows = [
        f"| n = {n:,} | {ms[(n, 'kept')]:,.1f} ms | {ms[(n, 'decoded')]:,.1f} ms |" for n in SIZES
    ]
    return "\n".join(
        [
            "## GET /top and /metrics on the Higgs population",
            "",
            f"Command: `{command}`",
            "",
            f"{result.users:,} users ({result.ranked:,} engaged, the ranked ones) in "
            f"{result.partitions} partitions owned by one worker; rankings at the stream's last "
            "event time, each equal to `influence replay --top`'s. Medians; no HTTP.",
            "",
            "| GET /top | after the scan | every candidate decoded from the table |",
            "|---|---:|---:|",
            *rows,
            "",
            f"Before (every user read, `rank_users`): {result.old_top_s:,.2f} s for n = 10.",
            f"Post-assignment table scan with the boards: {result.scan_s:,.1f} s (decoding "
            f"alone: {result.decode_s:,.1f} s); boards {result.boards_mb:,.0f} MB; a write "
            f"costs {result.update_us:,.1f} µs per engaged user.",
            f"/metrics scrape: {result.scrape_ms:,.2f} ms (state gauges from the boards); the "
            f"table scan it ran every 10 s before: {result.old_state_scan_s * 1000:,.0f} ms on a "
            "dict (RocksDB: more).",
            "",
            "Top 10: " + ", ".join(f"{user} {score:.2f}" for score, user in result.top10),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.top_api", description=__doc__)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.top_api " + " ".join(argv if argv is not None else sys.argv[1:])
    print(section(run(args.input, args.partitions, args.repeat), command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""All Kafka benchmarks in one run, written into docs/benchmarks.md with PNG plots.

    python -m benchmarks [--events 200000] [--users 1000000] [--quick] [--only NAME ...]
                         [--write docs/benchmarks.md]

NAME is one of path (item 1), latency (2), state (3), peer (4), scaling (5), top (GET /top and
the /metrics scrape on the Higgs population, `benchmarks.top_api`: no broker), replay (the whole
`influence replay --snapshot-out` process on the Higgs stream against a minimal reference
process, `benchmarks.replay_process`: no broker). Everything else
runs on the broker at KAFKA_BOOTSTRAP_SERVERS (else the project's own, started if absent), one
measurement after the other, so the ratios in each table are side by side. Each section of
the Markdown file is replaced in place between its own markers; the embedded-engine sections
written by `python -m benchmarks.embedded` are left as they are. Needs `pip install -e
'.[kafka,bench]'`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks import (
    harness,
    kafka_path,
    latency,
    peer_quix,
    replay_process,
    scaling,
    state_scale,
    top_api,
)
from benchmarks.harness import mb
from benchmarks.kafka_path import PathResult, WorkerRun
from benchmarks.latency import LatencyResult
from benchmarks.state_scale import ScaleResult

NAMES = ("path", "latency", "state", "peer", "scaling", "top", "replay")
WITHOUT_BROKER = {"top", "replay"}
SELF_DESCRIBED = {*WITHOUT_BROKER, "peer"}
"""Sections that name their own command, machine and versions: a run of only these leaves the
Kafka setup section (which the other Kafka sections were measured under) as it is."""
LATENCY_RATES = (2_000.0, 1_000.0)
"""Fixed offered loads measured besides the issue's (half the maximum): where p99 stands when
the worker is not near saturation."""
TARGET_USERS = 1_000_000


@dataclass
class Results:
    path: PathResult | None = None
    peer: peer_quix.PeerResult | None = None
    latency: list[LatencyResult] = field(default_factory=list)
    """The issue's rate (half the measured maximum) first, then the fixed lower rates."""
    state: ScaleResult | None = None
    scaling: list[WorkerRun] = field(default_factory=list)
    top: top_api.TopResult | None = None
    replay: replay_process.ProcessResult | None = None


def machine() -> str:
    import psutil

    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    ram = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {ram:.0f} GiB RAM, {platform.platform()}"


def versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    pom = (harness.REPO / "deploy/kafka/pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.+?)</kafka.version>", pom)
    import confluent_kafka

    libs = ", ".join(
        f"{name} {version(name)}"
        for name in ("faust-streaming", "aiokafka", "quixstreams", "confluent-kafka", "orjson")
    )
    return (
        f"Python {platform.python_version()}; {libs}; librdkafka {confluent_kafka.libversion()[0]};"
        f" Apache Kafka {kafka.group(1) if kafka else '?'} (single node, KRaft, deploy/kafka)"
    )


def plot_throughput(results: Results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = results.path
    assert path is not None
    bars = [
        ("plain aiokafka\nconsumer (limit)", path.transport_events_per_s),
        ("embedded engine", path.embedded_events_per_s),
        ("counting Faust agent", path.faust_floor_events_per_s),
        ("our worker,\ncompiled core", path.worker.events_per_s),
    ]
    if path.python_worker is not None:
        bars.append(("our worker,\nPython core", path.python_worker.events_per_s))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="#4a7ebb")
    ax.set_xscale("log")
    ax.set_xlabel("events/s (log scale)")
    for y, (_, rate) in enumerate(bars):
        ax.text(rate, y, f" {rate:,.0f}", va="center")
    ax.set_title(f"Throughput, {path.events:,} Higgs events, same run")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_latency(results: list[LatencyResult], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for result in results:
        values = sorted(result.latencies_ms)
        label = f"{result.offered_per_s:,.0f} events/s"
        ax.plot(values, [i / len(values) for i in range(len(values))], label=label)
    ax.axvline(250, color="grey", linestyle="--", label="target p99 250 ms")
    ax.set_xscale("log")
    ax.set_xlabel("produce → score event received (ms, log scale)")
    ax.set_ylabel("fraction of score events")
    ax.set_title("Latency by offered load (one worker)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_scaling(runs: list[WorkerRun], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r.workers for r in runs], [r.events_per_s for r in runs], marker="o")
    ax.set_xticks([r.workers for r in runs])
    ax.set_xlabel("workers (4 partitions, 2 cores)")
    ax.set_ylabel("events/s")
    ax.set_ylim(bottom=0)
    ax.set_title("Scaling on one 2-core machine")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def section_setup(command: str) -> str:
    return "\n".join(
        [
            "## Kafka benchmarks: how they were run",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine()}  ",
            f"Versions: {versions()}  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            "Each measurement runs alone, one after the other, in this one invocation; the broker,",
            "the workers and the benchmark share the machine's cores. Absolute rates drift",
            "between runs here (other work on the machine): compare the ratios.",
            "",
        ]
    )


def section_path(results: Results) -> str:
    path = results.path
    assert path is not None
    w, py = path.worker, path.python_worker
    floor = path.faust_floor_events_per_s
    python_row = (
        []
        if py is None
        else [
            f"| one worker, Python core (INFLUENCE_CORE=python) | {py.events_per_s:,.0f} | "
            f"{py.events_per_s / path.embedded_events_per_s:.2f} | "
            f"{py.events_per_s / floor:.2f} | |"
        ]
    )
    rows = [
        "## Kafka path throughput (item 1)",
        "",
        f"The first {path.events:,} Higgs events as v1 JSON, produced into fresh 4-partition",
        f"topics first ({path.produce_s:.1f} s), then read by each contender in turn.",
        "",
        "| | events/s | ratio to the embedded engine | ratio to the counting Faust agent "
        "| target |",
        "|---|---:|---:|---:|---|",
        f"| plain aiokafka consumer + orjson (transport limit) | "
        f"{path.transport_events_per_s:,.0f} | "
        f"{path.transport_events_per_s / path.embedded_events_per_s:.2f} | "
        f"{path.transport_events_per_s / floor:.2f} | |",
        f"| a Faust agent that only counts (`benchmarks.faust_floor`, `take_events`) | "
        f"{floor:,.0f} | {floor / path.embedded_events_per_s:.2f} | 1 | |",
        *(
            []
            if path.faust_floor_noack_events_per_s is None
            else [
                f"| the same agent taking batches as the worker does (`noack_take`) | "
                f"{path.faust_floor_noack_events_per_s:,.0f} | "
                f"{path.faust_floor_noack_events_per_s / path.embedded_events_per_s:.2f} | "
                f"{path.faust_floor_noack_events_per_s / floor:.2f} | |"
            ]
        ),
        f"| embedded engine, Python core (same bytes, one process) | "
        f"{path.embedded_events_per_s:,.0f} | 1 | {path.embedded_events_per_s / floor:.2f} | |",
        f"| **one worker**, compiled core (input topics → score events) | "
        f"**{w.events_per_s:,.0f}** | **{path.ratio_embedded:.2f}** | "
        f"**{path.ratio_floor:.2f}** | ≥ 10,000/s and ≥ 0.75 × the counting agent |",
        *python_row,
        "",
        f"Worker (compiled core): {w.seconds:.1f} s from the first to the last score event "
        f"({w.score_events:,} score events; embedded engine: {path.embedded_score_changes:,}), "
        f"{w.seconds_to_commit:.1f} s until the group's committed offsets reached the end of "
        f"the input and repartition topics; RSS at the end {mb(w.rss_bytes)}. The worker "
        f"reaches {path.ratio_transport:.3f} of what a bare consumer reads. CPU time of the "
        f"whole process (start-up included): the worker {w.cpu_seconds:.1f} s, the counting "
        f"agent {path.faust_floor_cpu_seconds:.1f} s"
        + (f", the Python-core worker {py.cpu_seconds:.1f} s." if py is not None else "."),
        ""
        if py is None
        else f"\nWorker (Python core): {py.seconds:.1f} s, {py.score_events:,} score events, "
        f"RSS {mb(py.rss_bytes)}; the compiled core is {w.events_per_s / py.events_per_s:.2f}× "
        "its rate.",
        "",
        "![throughput](benchmarks/throughput.png)",
        "",
    ]
    return "\n".join(rows)


def section_latency(results: list[LatencyResult]) -> str:
    rows = []
    for result in results:
        verdict = "meets" if result.p99_ms < 250 else "misses"
        rows.append(
            f"| {result.offered_per_s:,.0f} ({result.achieved_per_s:,.0f} reached) | "
            f"{result.samples:,} | {result.p50_ms:,.0f} ms | {result.p90_ms:,.0f} ms | "
            f"**{result.p99_ms:,.0f} ms** | {result.max_ms:,.0f} ms | {verdict} |"
        )
    return "\n".join(
        [
            "## Latency (item 2)",
            "",
            "One worker, joined and idle; events produced at a steady rate: first half the "
            "worker's measured maximum above (the issue's load), then at fixed lower rates. "
            "Latency: a score event's receive time at a consumer minus the produce time of the "
            "event named in its id. The producer runs on the same two cores as the broker and "
            "the worker.",
            "",
            "| events/s offered | score events | p50 | p90 | p99 | max | p99 < 250 ms |",
            "|---|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            "![latency](benchmarks/latency.png)",
            "",
        ]
    )


def section_state(result: ScaleResult) -> str:
    measured = result.users
    scale = TARGET_USERS / measured
    extrapolated = (
        ""
        if measured >= TARGET_USERS
        else (
            f" Measured at {measured:,} users; the last column scales RSS and recovery "
            f"linearly to {TARGET_USERS:,} (both grow with the number of stored users)."
        )
    )
    per_user = result.value_bytes_per_user + result.key_bytes_per_user
    return "\n".join(
        [
            "## Scale of state (item 3)",
            "",
            f"A generated population: {result.events:,} retweets, each by a new user of a new "
            f"user ({result.stored_users:,} users stored). One worker, memory store; then it is "
            "stopped and a new worker rebuilds the table from the changelog." + extrapolated,
            "",
            f"| measure | at {measured:,} users | at {TARGET_USERS:,} | target |",
            "|---|---:|---:|---|",
            f"| stored bytes per user (value + key) | {per_user:,.0f} | {per_user:,.0f} | "
            "≤ 1,024 |",
            f"| worker RSS with the population in | {mb(result.rss_bytes)} | "
            f"{mb(result.rss_bytes * scale)} | |",
            (
                f"| recovery: restarted worker ready | {result.recovery_s:,.1f} s | "
                f"{result.recovery_s * scale:,.1f} s | ≤ 60 s |"
                if result.recovery_s is not None
                else "| recovery: restarted worker ready | **not ready: Faust's changelog "
                "recovery hung** (docs/reliability.md) | | ≤ 60 s |"
            ),
            f"| RSS after recovery | {mb(result.recovered_rss_bytes)} | "
            f"{mb(result.recovered_rss_bytes * scale)} | |",
            f"| changelog records (one per user per batch) | {result.changelog_records:,} | | |",
            f"| processing the population | {result.process_s:,.0f} s | | |",
            "",
            "These users each hold one event: the Higgs replay's average (embedded section above)",
            "is the figure for users with a history.",
            "",
        ]
    )


def section_scaling(runs: list[WorkerRun]) -> str:
    base = runs[0].events_per_s
    rows = [
        f"| {r.workers} | {r.events_per_s:,.0f} | {r.events_per_s / base:.2f} | {mb(r.rss_bytes)} |"
        for r in runs
    ]
    return "\n".join(
        [
            "## Scaling: workers on 4 partitions (item 5)",
            "",
            f"{runs[0].events:,} Higgs events; the workers join first, then the stream is "
            "produced; fresh topics for each count.",
            "",
            "| workers | events/s | × one worker | RSS of one worker |",
            "|---:|---:|---:|---:|",
            *rows,
            "",
            "On 2 cores shared with the broker, more than one worker mostly adds contention: the",
            "figures show how the partitions split, not a cluster's speed-up. Across machines a",
            "deployment scales by partitions: each worker owns whole partitions (a user's state",
            "never leaves its partition), so N machines can each run partitions/N of them;",
            "create the topics with as many partitions as the largest deployment will have.",
            "",
            "![scaling](benchmarks/scaling.png)",
            "",
        ]
    )


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the block between `<!-- bench:name -->` markers replaced (or appended)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    return text.rstrip() + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--events", type=int, help="Higgs events (default 200,000)")
    parser.add_argument("--users", type=int, help="state benchmark population (default 1M)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try it out")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--latency-seconds", type=float, help="seconds of offered load")
    parser.add_argument("--write", type=Path, help="Markdown file to update")
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else 200_000)
    users = args.users or (50_000 if args.quick else TARGET_USERS)
    seconds = args.latency_seconds or (15.0 if args.quick else 40.0)
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    only = set(args.only)
    server = harness.bootstrap() if only - WITHOUT_BROKER else ""
    results = Results()
    sections: dict[str, str] = {}
    plots = (args.write.parent if args.write else Path("docs")) / "benchmarks"
    plots.mkdir(parents=True, exist_ok=True)

    def step(name: str, run: Callable[[], None]) -> None:
        started = time.monotonic()
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        run()
        print(f"[{time.strftime('%H:%M:%S')}] {name} done in {time.monotonic() - started:.0f} s")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        messages = harness.higgs_messages(events) if only - {"state", *WITHOUT_BROKER} else []
        if only & {"path", "latency"}:

            def path() -> None:
                results.path, path_deployment = kafka_path.run(server, messages, tmp)
                harness.delete_topics_containing(server, path_deployment.name)

            step("path", path)
        if "peer" in only:

            def peer() -> None:
                results.peer = peer_quix.run(server, messages, tmp)

            step("peer", peer)
        if "latency" in only:
            assert results.path is not None
            half = results.path.worker.events_per_s / 2
            rates = [half, *(r for r in LATENCY_RATES if r < half)]
            needed = int(half * seconds)
            stream = messages if needed <= len(messages) else harness.higgs_messages(needed)

            def lat() -> None:
                for rate in rates:
                    results.latency.append(latency.run(server, stream, rate, seconds, tmp))

            step("latency", lat)
        if "scaling" in only:

            def scale() -> None:
                results.scaling = scaling.run(server, messages, [1, 2, 4], tmp)

            step("scaling", scale)
        if "state" in only:

            def state() -> None:
                results.state = state_scale.run(server, users, tmp, recovery_timeout=180.0)

            step("state", state)
        if "top" in only:

            def top() -> None:
                results.top = top_api.run()

            step("top", top)
        if "replay" in only:

            def replay() -> None:
                results.replay = replay_process.run(rounds=3 if args.quick else 5)

            step("replay", replay)

    if only - SELF_DESCRIBED:  # the setup of the Kafka runs: not rewritten by the others
        sections["setup"] = section_setup(command)
    if results.path is not None:
        plot_throughput(results, plots / "throughput.png")
        sections["path"] = section_path(results)
    if results.latency:
        plot_latency(results.latency, plots / "latency.png")
        sections["latency"] = section_latency(results.latency)
    if results.state is not None:
        sections["state"] = section_state(results.state)
    if results.peer is not None:
        setup = f"Machine: {machine()}  \nVersions: {versions()}  \n" + time.strftime(
            "Date: %Y-%m-%d %H:%M UTC", time.gmtime()
        )
        sections["peer"] = peer_quix.section(results.peer, command, setup)
    if results.scaling:
        plot_scaling(results.scaling, plots / "scaling.png")
        sections["scaling"] = section_scaling(results.scaling)
    if results.top is not None:
        sections["top"] = top_api.section(results.top, command)
    if results.replay is not None:
        sections["replay"] = replay_process.section(results.replay, command)
    for body in sections.values():
        print(body)
    if args.write:
        text = args.write.read_text() if args.write.exists() else "# Benchmarks\n"
        for name in ("setup", *NAMES):
            if name in sections:
                text = replace_section(text, name, sections[name])
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

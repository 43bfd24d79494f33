"""Item 4: our worker next to Quix Streams apps, and each framework's floor, in one run on the
same topics and stream (`benchmarks.quix_apps` has the Quix apps).

On one fresh deployment, produced once and read by each contender in turn (its own consumer
group):

- the floors: a plain aiokafka consumer that only counts (the transport), a Faust agent that
  only counts (`benchmarks.faust_floor`, `take_events`, then `noack_take`, the worker's own
  input path), a stateless Quix Streams app that only counts (`quix_apps.count`: the topics
  concatenated as the scoring apps read them, then a dataframe per topic);
- our worker on the compiled core (INFLUENCE_CORE=native), as `benchmarks.kafka_path` runs it;
- the Quix Streams apps: tuned on the compiled core (RocksDB, then Quix's memory store, which
  is what the benchmark's worker has), tuned on the Python core, and as a user writes it.

Scoring apps are timed from the first score event received to the last; the floors from the
first message counted to the last. Every topic the run made (the deployment's, the Faust
agents', Quix's changelog, repartition and output topics: all carry the deployment's name) is
deleted at the end.

    python -m benchmarks.peer_quix [--events 100000] [--variants tuned written ...]

`python -m benchmarks --only peer --events N --write docs/benchmarks.md` runs the same and
rewrites the peer section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks import harness, kafka_path
from benchmarks.harness import Message, Tail
from benchmarks.kafka_path import WorkerRun
from tests.integration.pipeline_kit import Deployment, new_deployment

POLL_S = 0.05
"""The tuned apps' `consumer_poll_timeout` (Quix's default: 1 s). Concatenated topics are read
aligned by timestamp, and a partition whose buffer has run dry, an input's or the repartition
topic's, holds back its partition number until the next fetch, which waits up to this long for
a batch; 50 ms is our worker's batch window (INFLUENCE_BATCH_WITHIN_S)."""

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "tuned-memory": (
        "Quix, tuned: compiled core, memory store",
        ["tuned", "--core", "native", "--store", "memory", "--poll", str(POLL_S)],
    ),
    "tuned": (
        "Quix, tuned: compiled core, RocksDB",
        ["tuned", "--core", "native", "--poll", str(POLL_S)],
    ),
    "tuned-python": (
        "Quix, tuned: Python core, RocksDB",
        ["tuned", "--core", "python", "--poll", str(POLL_S)],
    ),
    "tuned-each": (
        "Quix, tuned but each message's user written at once: compiled core, RocksDB",
        ["tuned", "--core", "native", "--poll", str(POLL_S), "--write", "message"],
    ),
    "written-poll": (
        f"Quix as written, `consumer_poll_timeout` {POLL_S * 1000:.0f} ms only",
        ["written", "--poll", str(POLL_S)],
    ),
    "written": ("Quix, as a user writes it: Python core, JSON rows, defaults", ["written"]),
}
"""Name → (label, `benchmarks.quix_apps` arguments), in the order they run."""


@dataclass(frozen=True, slots=True)
class Floor:
    key: str
    """aiokafka, faust-take, faust-noack, quix@POLL_S (concatenated topics), quix-separate."""
    label: str
    messages_per_s: float
    cpu_seconds: float | None = None
    """The process's CPU time at the end, start-up included (None: measured in this process)."""


@dataclass
class PeerResult:
    events: int
    produce_s: float
    worker: WorkerRun
    peers: list[tuple[str, WorkerRun]] = field(default_factory=list)
    """(`VARIANTS` name, run), in the order run."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(`VARIANTS` name, what went wrong) of the variants that gave no result."""
    floors: list[Floor] = field(default_factory=list)


def child_command(
    kind: str,
    server: str,
    group: str,
    output: str,
    state_dir: Path,
    events: int,
    deployment: Deployment,
    options: list[str],
) -> list[str]:
    """The command line of one `benchmarks.quix_apps` process over `deployment`'s inputs."""
    return [
        sys.executable,
        "-m",
        "benchmarks.quix_apps",
        kind,
        server,
        group,
        output,
        str(state_dir),
        str(events),
        *deployment.topics.inputs,
        *options,
    ]


def quix_app(
    server: str, deployment: Deployment, name: str, args: list[str], events: int, tmp: Path
) -> WorkerRun:
    """A Quix scoring app (`quix_apps` `args`) over `deployment`'s produced input topics."""
    group = f"{deployment.name}-quix-{name}"
    output = f"{group}-score-changes"
    log = tmp / f"{group}.log"
    kind, *options = args
    process = subprocess.Popen(
        child_command(kind, server, group, output, tmp / group, events, deployment, options),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=harness.REPO,
    )
    tail = Tail(server, output, deployment.partitions)
    try:
        _wait_topic(server, output, alive=lambda: process.poll() is None)
        tail.start()
        done = harness.wait_group_done(
            server,
            group,
            list(deployment.topics.inputs),
            timeout=600.0,
            alive=lambda: process.poll() is None,
        )
        tail.wait_quiet(5.0)
        rss = harness.rss_bytes(process.pid)
        cpu = harness.cpu_seconds(process.pid)
    except BaseException:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        tail.stop()
        process.terminate()
        process.wait(60)
    if not tail.received:
        raise RuntimeError(f"{name}: no score events")
    first, last = tail.received[0], tail.received[-1]
    return WorkerRun(1, events, last - first, done - first, len(tail.received), rss, cpu)


def _wait_topic(server: str, topic: str, alive: Callable[[], bool], timeout: float = 120.0) -> None:
    """Until the app has created its output topic (the tail must not start before it)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": server})
    deadline = time.monotonic() + timeout
    while topic not in admin.list_topics(timeout=10).topics:
        if time.monotonic() > deadline or not alive():
            raise TimeoutError(f"the Quix app did not create {topic}")
        time.sleep(0.5)


def quix_floor(
    server: str,
    deployment: Deployment,
    total: int,
    tmp: Path,
    concat: bool = True,
    poll_s: float = 1.0,
) -> Floor:
    """The stateless Quix app that only counts (`quix_apps.count`), in its own process; with
    `concat`, the three topics as one dataframe (read aligned by timestamp, as the scoring
    apps read them), else a dataframe each; `poll_s`: its `consumer_poll_timeout`."""
    kind = "count" if concat else "count-separate"
    group = f"{deployment.name}-quix-{kind}-{poll_s * 1000:.0f}"
    command = child_command(
        kind, server, group, "-", tmp / group, total, deployment, ["--poll", str(poll_s)]
    )
    done = subprocess.run(command, capture_output=True, timeout=1800, cwd=harness.REPO)
    found = re.findall(rb'\{"messages":[^}]*\}', done.stdout)
    if not found:
        raise RuntimeError(f"the counting Quix app gave no result: {done.stdout[-2000:]!r}")
    result = orjson.loads(found[-1])
    rate = float(result["messages"]) / float(result["seconds"])
    timeout = f"`consumer_poll_timeout` {poll_s * 1000:,.0f} ms"
    label = (
        f"a stateless Quix Streams app that only counts, topics `concat` (aligned), {timeout}"
        if concat
        else f"the same app, a dataframe per topic (not aligned), {timeout}"
    )
    key = f"quix@{poll_s}" if concat else "quix-separate"
    return Floor(key, label, rate, result["cpu_seconds"])


def floors(server: str, deployment: Deployment, total: int, tmp: Path) -> list[Floor]:
    inputs = deployment.topics.inputs
    plain = asyncio.run(kafka_path._plain_consumer(server, inputs, total, decode=False))
    app_id = f"{deployment.name}-faust-count"
    take, take_cpu = kafka_path.faust_floor(deployment, total, app_id=f"{app_id}-take")
    noack, noack_cpu = kafka_path.faust_floor(
        deployment, total, noack=True, app_id=f"{app_id}-noack"
    )
    return [
        Floor("aiokafka", "a plain aiokafka consumer that only counts (`getmany`)", plain),
        Floor("faust-take", "a Faust agent that only counts (`take_events`)", take, take_cpu),
        Floor(
            "faust-noack",
            "the same agent, batches as the worker takes them (`noack_take`)",
            noack,
            noack_cpu,
        ),
        quix_floor(server, deployment, total, tmp),
        quix_floor(server, deployment, total, tmp, poll_s=POLL_S),
        quix_floor(server, deployment, total, tmp, concat=False),
    ]


def run(
    server: str, messages: list[Message], tmp: Path, variants: list[str] | None = None
) -> PeerResult:
    """Floors, our worker, then the Quix variants, on one deployment (deleted at the end)."""
    deployment = new_deployment(server, "bench-peer-")
    try:
        produce_s = harness.produce_all(server, deployment, messages)
        total = len(messages)
        measured = floors(server, deployment, total, tmp)
        env = {"INFLUENCE_CORE": "native"}
        worker = kafka_path.run_workers(server, deployment, 1, total, tmp, env=env)
        result = PeerResult(total, produce_s, worker, floors=measured)
        for name in variants or list(VARIANTS):
            _, args = VARIANTS[name]
            try:
                result.peers.append((name, quix_app(server, deployment, name, args, total, tmp)))
            except (RuntimeError, TimeoutError) as exc:  # the others are still worth having
                print(f"{name} failed: {exc}", file=sys.stderr)
                result.failed.append((name, str(exc)[:200]))
        return result
    finally:
        harness.delete_topics_containing(server, deployment.name)


def poll_of(name: str) -> float:
    """The `consumer_poll_timeout` a variant runs with."""
    args = VARIANTS[name][1]
    return float(args[args.index("--poll") + 1]) if "--poll" in args else 1.0


def section(result: PeerResult, command: str, setup: str) -> str:
    w = result.worker
    floor = {f.key: f.messages_per_s for f in result.floors}
    ours = floor.get("faust-noack", float("nan"))
    peer_rows = [
        f"| {VARIANTS[name][0]} | {r.events_per_s:,.0f} | {r.score_events:,} | "
        f"{harness.mb(r.rss_bytes)} | {r.cpu_seconds:,.0f} | "
        f"{r.events_per_s / floor.get(f'quix@{poll_of(name)}', float('nan')):.2f} | "
        f"**{w.events_per_s / r.events_per_s:.2f}** |"
        for name, r in result.peers
    ] + [f"| {VARIANTS[name][0]} | failed: {why} | | | | | |" for name, why in result.failed]
    floor_rows = [
        f"| {f.label} | {f.messages_per_s:,.0f} | "
        f"{'' if f.cpu_seconds is None else f'{f.cpu_seconds:,.0f}'} |"
        for f in result.floors
    ]
    return "\n".join(
        [
            "## Peer: Quix Streams (item 4)",
            "",
            f"Command: `{command}`  ",
            setup,
            "",
            f"The first {result.events:,} Higgs events as v1 JSON, produced once into fresh "
            f"4-partition topics ({result.produce_s:.1f} s), then read by each contender in "
            "turn, one after the other, each as its own consumer group "
            "(`benchmarks/peer_quix.py`; the Quix apps: `benchmarks/quix_apps.py`). Scoring "
            "apps: first to last score event received; CPU: the process's, start-up included; "
            "÷ floor: the app's rate over its own framework's counting floor below "
            "(our worker: the Faust agent with `noack_take`, its input path; a Quix app: the app "
            "counting the concatenated topics, as the scoring apps read them, with the same "
            "`consumer_poll_timeout`).",
            "",
            "| | events/s | score events | RSS | CPU s | ÷ floor | ours / theirs |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| **our worker** (Faust, compiled core, memory store + changelog) | "
            f"**{w.events_per_s:,.0f}** | {w.score_events:,} | {harness.mb(w.rss_bytes)} | "
            f"{w.cpu_seconds:,.0f} | {w.events_per_s / ours:.2f} | 1 |",
            *peer_rows,
            "",
            "The frameworks' floors, same topics, same run (first to last message counted):",
            "",
            "| floor | messages/s | CPU s |",
            "|---|---:|---:|",
            *floor_rows,
            "",
            *PROSE,
            "",
        ]
    )


PROSE = [
    "What each side does. All of them decode the same v1 JSON, run the actor step where the",
    "actor's state lives, move each engagement to its target's partition through Kafka and run",
    "the target step there, keep state with a changelog topic, at-least-once, and write",
    "score-change events in the same format. Our worker also aligns its inputs by event",
    "time, bundles a batch's engagements into one repartition message, guards every step",
    "against redelivery, and sends the actor step's changes (reciprocity) and decay-only",
    "changes at day boundaries besides the target step's; its actor and target sides share",
    "one user state. The Quix apps send the target step's changes only (hence a few percent",
    "fewer score events). Quix keeps one store per stateful step, so in every Quix app a",
    "user's actor side and target side are two states; it sends one repartition message per",
    "engagement, and it reads the concatenated input topics and the repartition topic",
    "aligned by Kafka timestamp (produce time here, the file's order), which its scoring apps",
    "cannot turn off: `concat` requires it.",
    "",
    "- *As a user writes it, defaults*: the Python core (`scoring.apply_action`,",
    "  `apply_engagement`, `detect_change`) on the user's state kept as a JSON row: every",
    "  message parses the row and writes it back whole (`state_from_row` / `state_to_row`",
    "  through Quix's orjson), tens of kilobytes for a user with thousands of engagers; Quix's",
    "  defaults (`commit_interval` 5 s, RocksDB, `consumer_poll_timeout` 1 s).",
    f"- *`consumer_poll_timeout` {POLL_S * 1000:.0f} ms only*: the same app with the one setting",
    "  that governs Quix's aligned reads. A partition (of an input or of the repartition",
    "  topic) whose buffer has run dry holds back every topic's partition of that number",
    "  until the next fetch, and a fetch waits for a full batch (10,000 messages) or this",
    "  timeout; the counting floors show what it costs alone.",
    "- *Tuned*: that setting, plus our worker's state layout and steps inside Quix: the",
    "  partition's users stay decoded between messages in the worker's own user cache",
    "  (compiled or Python core), with the worker's redelivery guard, and a changed user is",
    "  written to its Quix state as the bytes our worker stores (`State.set_bytes`: no",
    "  serialisation by Quix) once per checkpoint, by a sink that receives nothing and whose",
    "  `flush` Quix calls as each checkpoint commits, before it produces the changelogs and",
    "  commits the state (`quix_apps.checkpoint_writes`: Quix's public hook there), as our",
    "  worker writes a user once per batch. The row *each message's user written at once*",
    "  writes it after every message instead (Quix's transaction still keeps only the last",
    "  value per key until the checkpoint, but every message encodes its user). Same score",
    "  events as the app as written on the same order of messages, and the same stored rows",
    "  either way (tests/test_quix_peer.py); between runs the count moves by a few, as the",
    "  timestamp-aligned reads interleave the repartition topic differently. The decoded",
    "  users are kept across checkpoints without Quix knowing: fine for one process that keeps",
    "  its partitions, as here; a production app would drop them when partitions are",
    "  revoked, as our worker does.",
    "- Left as Quix's defaults, with reason: `commit_interval` 5 s (state and offsets",
    "  committed together per checkpoint; our worker commits offsets every 2.8 s), the",
    "  at-least-once guarantee (our worker's), librdkafka's fetch settings (it prefetches",
    "  up to 100,000 messages a partition: the plain consumer's rate is not the limit).",
    "",
    "The fairest pair is our worker and Quix tuned on the compiled core with the memory",
    "store: the same core, the same state layout and decoded-user cache, the same kind of",
    "store (the benchmark's worker runs INFLUENCE_STORE=memory://; RocksDB is the row after",
    "it), both at-least-once with a changelog. What is left between them is the frameworks:",
    "their input paths (the floors), their repartitioning and their state transactions.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args(argv)
    server = harness.bootstrap()
    messages = harness.higgs_messages(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(server, messages, Path(tmp), args.variants)
    command = "python -m benchmarks.peer_quix " + " ".join(argv or sys.argv[1:])
    print(section(result, command, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

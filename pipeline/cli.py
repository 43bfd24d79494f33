"""The `influence` command line."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from pipeline import commands
from pipeline.sources import InputError
from scoring.errors import ScoringError

SCENARIO_NAMES = (
    "ring",
    "party",
    "vacation",
    "viral-retweet",
    "new-account",
    "slow-ring",
    "follow-train",
    "engagement-pod",
)
"""``--scenario``'s choices, spelled out so that building the parser (``influence worker``
too) never imports the synthetic package; tests/test_generate.py holds them equal to
``pipeline.synthetic.SCENARIOS``."""


def _time_ms(text: str) -> int:
    """Milliseconds since the epoch, or an ISO-8601 time (UTC unless it says otherwise)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _address(text: str) -> tuple[str, int]:
    from pipeline.explorer.serve import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="influence",
        description="Real-time, explainable influence scores from tweets, retweets and mentions.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = subcommands.add_parser("replay", help="score a stream in process (no broker)")
    replay.add_argument("inputs", nargs="+", metavar="INPUT", help="file, .gz file, or - (stdin)")
    replay.add_argument("--format", choices=("auto", "jsonl", "higgs"), default="auto")
    replay.add_argument("--events-out", metavar="FILE", help="score-change events (JSON lines)")
    replay.add_argument("--snapshot-out", metavar="FILE", help="final state, a line per user")
    replay.add_argument("--dead-letter", metavar="FILE", help="invalid input lines with reasons")
    replay.add_argument(
        "--as-of",
        type=_time_ms,
        metavar="TIME",
        help="evaluate decay at this event time (ms or ISO-8601)",
    )
    replay.add_argument(
        "--model",
        metavar="FILE",
        help="model file, or a bundled version by name: v1, v2 (default: v2)",
    )
    replay.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="print the N highest scores with their reasons",
    )
    replay.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics during the run",
    )
    replay.add_argument(
        "--serve",
        type=_address,
        metavar="[HOST:]PORT",
        help="after the replay, serve the query API, the explorer (/ui/) and /metrics on "
        "HOST:PORT (host 127.0.0.1 unless given) until interrupted",
    )
    replay.add_argument(
        "--core",
        choices=("auto", "native", "python"),
        help="scoring core: the compiled one (native), the Python one, or native when built "
        "(auto, the default; also $INFLUENCE_CORE); both give identical outputs",
    )
    replay.set_defaults(run=commands.replay)

    gen = subcommands.add_parser("generate", help="write a seeded synthetic stream (v1 JSON lines)")
    gen.add_argument("--users", type=int, default=2000)
    gen.add_argument("--days", type=int, default=60)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument(
        "--start",
        type=_time_ms,
        default=_time_ms("2025-01-01T00:00:00Z"),
        help="first day (ms or ISO-8601)",
    )
    gen.add_argument(
        "--scenario",
        action="append",
        default=[],
        choices=SCENARIO_NAMES,
        help="inject a scenario (repeatable)",
    )
    gen.add_argument("--out", default="-", metavar="FILE", help="output file (default stdout)")
    gen.set_defaults(run=commands.generate)

    cal = subcommands.add_parser("calibrate", help="fit the 1-100 scale of a model on a stream")
    cal.add_argument("inputs", nargs="+", metavar="INPUT")
    cal.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    cal.add_argument(
        "--model", metavar="FILE", help="base model file or bundled name (default: v2)"
    )
    cal.add_argument("--format", choices=("auto", "jsonl", "higgs"), default="auto")
    cal.add_argument(
        "--match",
        metavar="PREVIOUS_MODEL",
        help="fit the scale so scores keep the previous model's distribution on this stream",
    )
    cal.add_argument("--report", metavar="FILE", help="with --match: the shift as JSON")
    cal.set_defaults(run=commands.calibrate)

    worker = subcommands.add_parser(
        "worker", help="run a Faust worker (Kafka from KAFKA_BOOTSTRAP_SERVERS, INFLUENCE_*)"
    )
    worker.add_argument(
        "--model",
        metavar="FILE",
        help="model file, or a bundled version by name: v1, v2 (default: v2)",
    )
    worker.add_argument("--app-id", help="consumer group / state namespace")
    worker.add_argument("--web-port", type=int, help="port of this worker's web server")
    worker.add_argument(
        "--data-dir",
        help="holds <app id>/ with this worker's RocksDB tables; one per running worker",
    )
    worker.add_argument("--loglevel", default="info")
    worker.add_argument(
        "--shadow",
        action="store_true",
        help="own app id and <topic>.shadow.<version> outputs; never writes live topics",
    )
    worker.add_argument(
        "--from",
        dest="from_ms",
        type=_time_ms,
        metavar="TIME",
        help="a fresh group starts the inputs at this event time (ms or ISO-8601)",
    )
    worker.set_defaults(run=commands.worker)

    topics = subcommands.add_parser("topics", help="manage the pipeline's Kafka topics")
    topics.add_argument("action", choices=("create",))
    topics.add_argument("--partitions", type=int, help="partitions per topic")
    topics.set_defaults(run=commands.topics)

    produce = subcommands.add_parser(
        "produce", help="replay files into the input topics (Kafka from KAFKA_BOOTSTRAP_SERVERS)"
    )
    produce.add_argument("inputs", nargs="+", metavar="INPUT", help="file, .gz file, or -")
    produce.add_argument("--format", choices=("auto", "jsonl", "higgs"), default="auto")
    produce.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="S",
        help="0 = as fast as possible, N = N x real time by event time",
    )
    produce.add_argument(
        "--from",
        dest="from_ms",
        type=_time_ms,
        metavar="TIME",
        help="first event time produced (inclusive; ms or ISO-8601)",
    )
    produce.add_argument(
        "--to",
        dest="to_ms",
        type=_time_ms,
        metavar="TIME",
        help="event time to stop before (exclusive)",
    )
    produce.add_argument("--dead-letter", metavar="FILE", help="invalid input lines with reasons")
    produce.add_argument(
        "--source-id", help="fingerprint of the input for resuming (default: sha256 of the file)"
    )
    produce.set_defaults(run=commands.produce)

    compare = subcommands.add_parser(
        "compare", help="score a stream with two model versions and report the differences"
    )
    compare.add_argument("inputs", nargs="+", metavar="INPUT")
    compare.add_argument(
        "--model", action="append", required=True, metavar="FILE", help="twice: A then B"
    )
    compare.add_argument("--out", required=True, metavar="DIR", help="report directory")
    compare.add_argument("--format", choices=("auto", "jsonl", "higgs"), default="auto")
    compare.add_argument("--as-of", type=_time_ms, metavar="TIME", help="read scores at this time")
    compare.add_argument("--top", type=int, default=10, metavar="N", help="top movers each way")
    compare.set_defaults(run=commands.compare)
    subscribe = subcommands.add_parser(
        "subscribe", help="follow the score-changes topic and print each change readably"
    )
    subscribe.add_argument(
        "--min-delta",
        type=float,
        default=0.0,
        metavar="X",
        help="only changes of at least X points (a new user's first score counts whole)",
    )
    subscribe.add_argument(
        "--user", action="append", default=[], metavar="ID", help="only this user (repeatable)"
    )
    subscribe.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest retained change"
    )
    subscribe.add_argument("--json", action="store_true", help="print the events as JSON lines")
    subscribe.add_argument("--limit", type=int, metavar="N", help="stop after printing N")
    subscribe.set_defaults(run=commands.subscribe)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ScoringError as exc:
        print(f"influence: {exc}", file=sys.stderr)
        return 2
    except (OSError, InputError) as exc:
        print(f"influence: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The `influence` command line."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from datetime import UTC, datetime

from pipeline.settings import Settings
from pipeline.sources import InputError
from scoring import load_model
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


def _cmd_replay(args: argparse.Namespace) -> int:
    from pipeline.replay import open_output, replay

    model = load_model(args.model)
    with ExitStack() as stack:
        metrics = None
        if args.metrics_port is not None:
            from pipeline.metrics import PipelineMetrics, serve_metrics

            metrics = PipelineMetrics(model.model_version)
            stack.callback(serve_metrics(metrics, args.metrics_port))
        engine, summary = replay(
            args.inputs,
            model,
            fmt=args.format,
            events_out=open_output(args.events_out, stack),
            snapshot_out=open_output(args.snapshot_out, stack),
            dead_letter_out=open_output(args.dead_letter, stack),
            as_of=args.as_of,
            metrics=metrics,
            core=args.core,
        )
    print(summary.line(), file=sys.stderr)
    if args.top and engine.now is not None:
        from pipeline.replay import top_table

        print(top_table(engine, args.as_of or engine.now, args.top))
    if args.serve is not None:
        from pipeline.explorer.serve import serve_replay

        sys.stdout.flush()
        serve_replay(engine, args.as_of or engine.now or 0, args.serve, metrics)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.replay import open_output
    from pipeline.synthetic import GeneratorConfig, generate, write_jsonl

    config = GeneratorConfig(
        users=args.users,
        days=args.days,
        seed=args.seed,
        start_ms=args.start,
        scenarios=tuple(args.scenario),
    )
    with ExitStack() as stack:
        out = open_output(args.out, stack)
        assert out is not None
        count = write_jsonl(generate(config), out)
    print(
        f"generated {count:,} events for {args.users:,} users over {args.days} days",
        file=sys.stderr,
    )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pipeline.calibrate import calibrate

    if args.match is not None:
        from pipeline.match import calibrate_matching

        try:
            result = calibrate_matching(
                args.inputs, args.model, args.match, args.out, args.format, args.report
            )
        except ValueError as exc:
            print(f"influence: {exc}", file=sys.stderr)
            return 2
        print(result.summary(), file=sys.stderr)
        return 0
    population = calibrate(args.inputs, args.model, args.out, args.format)
    model = load_model(args.out)
    print(
        f"fitted the scale on {population:,} engaged users: {args.out} is "
        f"model {model.model_version}",
        file=sys.stderr,
    )
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name, value in (
            ("model_path", getattr(args, "model", None)),
            ("app_id", getattr(args, "app_id", None)),
            ("web_port", getattr(args, "web_port", None)),
            ("data_dir", getattr(args, "data_dir", None)),
            ("partitions", getattr(args, "partitions", None)),
            ("shadow", getattr(args, "shadow", None) or None),
            ("start_from_ms", getattr(args, "from_ms", None)),
        )
        if value is not None
    }
    return Settings.from_env(**overrides)


def _cmd_worker(args: argparse.Namespace) -> int:
    from pipeline.reprocess import worker_settings
    from pipeline.worker import run_worker

    # A shadow's topics are created by run_worker, once it holds its data directory.
    return run_worker(worker_settings(_settings(args)), loglevel=args.loglevel)


def _cmd_topics(args: argparse.Namespace) -> int:
    from pipeline.topics_admin import run_create_topics

    settings = _settings(args)
    created = run_create_topics(settings)
    print(
        f"created {len(created)} topics ({', '.join(created) or 'all existed'}) with "
        f"{settings.partitions} partitions on {settings.bootstrap_servers}",
        file=sys.stderr,
    )
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    import asyncio

    from pipeline.produce import TimeRange, run_produce
    from pipeline.replay import open_output

    settings = _settings(args)
    with ExitStack() as stack:
        try:
            stats = asyncio.run(
                run_produce(
                    args.inputs,
                    settings,
                    fmt=args.format,
                    speed=args.speed,
                    window=TimeRange(args.from_ms, args.to_ms),
                    source_id=args.source_id,
                    dead_letter_out=open_output(args.dead_letter, stack),
                )
            )
        except ValueError as exc:
            print(f"influence: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            from aiokafka.errors import KafkaError

            if not isinstance(exc, KafkaError):
                raise
            print(f"influence: Kafka at {settings.bootstrap_servers}: {exc}", file=sys.stderr)
            return 2
    print(stats.line(), file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pipeline.compare import run_compare

    if len(args.model) != 2:
        print("influence: compare needs exactly two --model files", file=sys.stderr)
        return 2
    try:
        report = run_compare(
            args.inputs, args.model[0], args.model[1], args.out, args.format, args.as_of, args.top
        )
    except ValueError as exc:
        print(f"influence: {exc}", file=sys.stderr)
        return 2
    print(report.summary(), file=sys.stderr)
    return 0


def _cmd_subscribe(args: argparse.Namespace) -> int:
    from pipeline.subscribe import run_subscribe

    return run_subscribe(
        _settings(args),
        min_delta=args.min_delta,
        users=args.user,
        from_beginning=args.from_beginning,
        as_json=args.json,
        limit=args.limit,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="influence",
        description="Real-time, explainable influence scores from tweets, retweets and mentions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="score a stream in process (no broker)")
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
    replay.set_defaults(run=_cmd_replay)

    gen = commands.add_parser("generate", help="write a seeded synthetic stream (v1 JSON lines)")
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
    gen.set_defaults(run=_cmd_generate)

    cal = commands.add_parser("calibrate", help="fit the 1-100 scale of a model on a stream")
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
    cal.set_defaults(run=_cmd_calibrate)

    worker = commands.add_parser(
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
    worker.set_defaults(run=_cmd_worker)

    topics = commands.add_parser("topics", help="manage the pipeline's Kafka topics")
    topics.add_argument("action", choices=("create",))
    topics.add_argument("--partitions", type=int, help="partitions per topic")
    topics.set_defaults(run=_cmd_topics)

    produce = commands.add_parser(
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
    produce.set_defaults(run=_cmd_produce)

    compare = commands.add_parser(
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
    compare.set_defaults(run=_cmd_compare)
    subscribe = commands.add_parser(
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
    subscribe.set_defaults(run=_cmd_subscribe)
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

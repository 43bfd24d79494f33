"""The `influence` command line."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from datetime import UTC, datetime

from pipeline.sources import InputError
from scoring import load_model
from scoring.errors import ScoringError


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


def _cmd_replay(args: argparse.Namespace) -> int:
    from pipeline.replay import open_output, replay

    model = load_model(args.model)
    with ExitStack() as stack:
        engine, summary = replay(
            args.inputs,
            model,
            fmt=args.format,
            events_out=open_output(args.events_out, stack),
            snapshot_out=open_output(args.snapshot_out, stack),
            dead_letter_out=open_output(args.dead_letter, stack),
            as_of=args.as_of,
        )
    print(summary.line(), file=sys.stderr)
    if args.top and engine.now is not None:
        from pipeline.replay import top_table

        print(top_table(engine, args.as_of or engine.now, args.top))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.generate import GeneratorConfig, generate, write_jsonl
    from pipeline.replay import open_output

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

    population = calibrate(args.inputs, args.model, args.out, args.format)
    model = load_model(args.out)
    print(
        f"fitted the scale on {population:,} engaged users: {args.out} is "
        f"model {model.model_version}",
        file=sys.stderr,
    )
    return 0


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
    replay.add_argument("--model", metavar="FILE", help="model file (default: bundled v1)")
    replay.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="print the N highest scores with their reasons",
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
        choices=("ring", "party", "vacation", "viral-retweet", "new-account"),
        help="inject a scenario (repeatable)",
    )
    gen.add_argument("--out", default="-", metavar="FILE", help="output file (default stdout)")
    gen.set_defaults(run=_cmd_generate)

    cal = commands.add_parser("calibrate", help="fit the 1-100 scale of a model on a stream")
    cal.add_argument("inputs", nargs="+", metavar="INPUT")
    cal.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    cal.add_argument("--model", metavar="FILE", help="base model (default: bundled v1)")
    cal.add_argument("--format", choices=("auto", "jsonl", "higgs"), default="auto")
    cal.set_defaults(run=_cmd_calibrate)
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

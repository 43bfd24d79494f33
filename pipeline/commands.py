"""What each `influence` command does, given its parsed arguments (`pipeline.cli` parses).

Every command imports what it runs inside its own body: building the parser, which every
`influence worker` does, must not import the synthetic data, the explorer or Faust.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from pipeline.settings import Settings
from scoring import load_model


def replay(args: argparse.Namespace) -> int:
    from pipeline.replay import open_output
    from pipeline.replay import replay as replay_inputs

    model = load_model(args.model)
    with ExitStack() as stack:
        metrics = None
        if args.metrics_port is not None:
            from pipeline.metrics import PipelineMetrics, serve_metrics

            metrics = PipelineMetrics(model.model_version)
            stack.callback(serve_metrics(metrics, args.metrics_port))
        engine, summary = replay_inputs(
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


def generate(args: argparse.Namespace) -> int:
    from pipeline.replay import open_output
    from pipeline.synthetic import GeneratorConfig, write_jsonl
    from pipeline.synthetic import generate as generate_events

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
        count = write_jsonl(generate_events(config), out)
    print(
        f"generated {count:,} events for {args.users:,} users over {args.days} days",
        file=sys.stderr,
    )
    return 0


def calibrate(args: argparse.Namespace) -> int:
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


def settings_of(args: argparse.Namespace) -> Settings:
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


def worker(args: argparse.Namespace) -> int:
    from pipeline.reprocess import worker_settings
    from pipeline.worker import run_worker

    # A shadow's topics are created by run_worker, once it holds its data directory.
    return run_worker(worker_settings(settings_of(args)), loglevel=args.loglevel)


def topics(args: argparse.Namespace) -> int:
    from pipeline.topics_admin import run_create_topics

    settings = settings_of(args)
    created = run_create_topics(settings)
    print(
        f"created {len(created)} topics ({', '.join(created) or 'all existed'}) with "
        f"{settings.partitions} partitions on {settings.bootstrap_servers}",
        file=sys.stderr,
    )
    return 0


def produce(args: argparse.Namespace) -> int:
    import asyncio

    from pipeline.produce import TimeRange, run_produce
    from pipeline.replay import open_output

    settings = settings_of(args)
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


def compare(args: argparse.Namespace) -> int:
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


def subscribe(args: argparse.Namespace) -> int:
    from pipeline.subscribe import run_subscribe

    return run_subscribe(
        settings_of(args),
        min_delta=args.min_delta,
        users=args.user,
        from_beginning=args.from_beginning,
        as_json=args.json,
        limit=args.limit,
    )

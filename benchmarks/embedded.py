"""Embedded engine throughput, memory and state size on the Higgs stream, against a baseline.

The baseline is the least a scorer can do: decode each JSON event with orjson and keep one
forward-decayed counter per target. The model runs on both cores, the compiled one that
`influence replay` uses and the Python one. All three loops read the same v1 JSON lines (the
Higgs stream converted once), each in its own process so peak RSS is its own; they run one
after the other in the same invocation, so the ratios are measured side by side.

    python -m benchmarks.embedded [--input HIGGS.gz] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from pipeline.native_engine import Core
from scoring.model import DAY_MS

DEFAULT_INPUT = Path(__file__).resolve().parents[2] / "shared/data/higgs-activity_time.txt.gz"
HALF_LIFE_MS = 45 * DAY_MS
CHILDREN = ("baseline", "native", "native-records", "python")


def convert(higgs: Path, out: Path) -> int:
    """Writes the Higgs stream as v1 JSON lines; returns the event count."""
    from pipeline.codec import decode_higgs_line
    from scoring.events import event_to_dict

    count = 0
    with gzip.open(higgs, "rb") as lines, out.open("wb") as sink:
        for number, line in enumerate(lines, 1):
            event = decode_higgs_line(line, number)
            sink.write(orjson.dumps(event_to_dict(event)) + b"\n")  # type: ignore[arg-type]
            count += 1
    return count


def run_model(path: Path, core: Core, records: bool = False) -> dict[str, float]:
    """The replay's own loops, as `influence replay` runs them without --events-out: the
    compiled core scores a megabyte of lines per call (computing every score change, handing
    none to Python), the Python core decodes and scores line by line. With `records`, the
    compiled core also hands every change to Python as an `Emitted` record, as it does for
    --events-out (the records are not serialised here)."""
    from pipeline.engine import Engine, long_lived_states
    from pipeline.native_engine import make_engine
    from pipeline.sources import decode_line
    from scoring import Event, encode_state, load_model

    engine = make_engine(load_model(), core)
    started = time.perf_counter()
    with path.open("rb") as stream, long_lived_states():
        if isinstance(engine, Engine):
            for number, line in enumerate(stream, 1):
                event = decode_line(line.rstrip(b"\n"), "jsonl", number, str(path))
                if isinstance(event, Event):
                    engine.process(event)
        else:
            while batch := stream.readlines(1 << 20):
                index = 0
                while (index := engine.score_lines(batch, index, None, records)) < len(batch):
                    raise AssertionError(f"a Higgs line the compiled core left: {batch[index]!r}")
                if records:
                    engine.take_changes()
    seconds = time.perf_counter() - started
    events = sum(engine.stats.events.values()) + engine.stats.self_engagements
    sizes = [len(encode_state(state)) for state in engine.states.values()]
    return {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "users": len(sizes),
        "state_bytes_per_user": sum(sizes) / len(sizes),
        "state_bytes_max": max(sizes),
        "score_changes": engine.stats.score_changes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_baseline(path: Path) -> dict[str, float]:
    rate = math.log(2) / HALF_LIFE_MS
    counters: dict[str, float] = {}
    landmark: int | None = None
    started = time.perf_counter()
    events = 0
    exp = math.exp
    loads = orjson.loads
    with path.open("rb") as lines:
        for line in lines:
            event = loads(line)
            if landmark is None:
                landmark = event["ts"]
            target = event["target"]
            counters[target] = counters.get(target, 0.0) + exp(rate * (event["ts"] - landmark))
            events += 1
    seconds = time.perf_counter() - started
    return {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.embedded", "--child", mode, "--json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def report(
    natives: list[dict[str, float]],
    with_records: list[dict[str, float]],
    python: dict[str, float],
    baselines: list[dict[str, float]],
    command: str,
) -> str:
    """The section for docs/benchmarks.md: medians over the rounds, with their range."""
    native_rates = [r["events_per_s"] for r in natives]
    base_rates = [r["events_per_s"] for r in baselines]
    ratios = [n / b for n, b in zip(native_rates, base_rates, strict=True)]
    record_rates = [r["events_per_s"] for r in with_records]
    record_ratios = [n / b for n, b in zip(record_rates, base_rates, strict=True)]
    native = natives[native_rates.index(sorted(native_rates)[len(natives) // 2])]
    base = statistics.median(base_rates)
    rounds = len(natives)

    def spread(values: list[float], fmt: str) -> str:
        return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–" + (
            f"{format(max(values), fmt)})"
        )

    return "\n".join(
        [
            "## Embedded engine on the Higgs stream",
            "",
            f"Command: `{command}`  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}  ",
            f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            "`influence replay` runs the compiled core (`native/`); the Python core is the same "
            "model in `scoring/`, which the Kafka workers run. Both give identical outputs. "
            f"The baseline and the compiled core ran {rounds} times, one after the other in each "
            "round: medians, with the range in parentheses (this machine's speed varies by a "
            "third from run to run); the Python core ran once. The compiled core computes every "
            "score change (score, reasons, topics) either way; `influence replay` hands them to "
            'Python as records only to write --events-out (the rows "with records"; the '
            "Python core always builds them).",
            "",
            "| measure | compiled core | Python core | baseline loop | target |",
            "|---|---|---|---|---|",
            f"| events/s (one core) | {spread(native_rates, ',.0f')} | "
            f"{python['events_per_s']:,.0f} | {spread(base_rates, ',.0f')} | ≥ 100,000 |",
            f"| ratio to the baseline, per round | {spread(ratios, '.3f')} | "
            f"{python['events_per_s'] / base:.3f} | 1 | ≥ 0.333 |",
            f"| events/s, changes handed to Python as records | {spread(record_rates, ',.0f')} "
            "| | | |",
            f"| ratio to the baseline, with records | {spread(record_ratios, '.3f')} | | | |",
            f"| peak RSS | {native['peak_rss_mb']:,.0f} MB | {python['peak_rss_mb']:,.0f} MB | "
            f"{baselines[0]['peak_rss_mb']:,.0f} MB | |",
            f"| state bytes per user (avg / max) | {native['state_bytes_per_user']:,.0f} / "
            f"{native['state_bytes_max']:,.0f} | {python['state_bytes_per_user']:,.0f} / "
            f"{python['state_bytes_max']:,.0f} | | ≤ 1,024 avg |",
            f"| users / events / score changes | {native['users']:,.0f} / "
            f"{native['events']:,.0f} / {native['score_changes']:,.0f} | {python['users']:,.0f}"
            f" / {python['events']:,.0f} / {python['score_changes']:,.0f} | | |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--rounds", type=int, default=5, help="baseline + compiled-core runs")
    parser.add_argument("--write", type=Path, help="replace this section in a Markdown file")
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child == "baseline":
            result = run_baseline(args.json)
        elif args.child == "native-records":
            result = run_model(args.json, "native", records=True)
        else:
            result = run_model(args.json, args.child)
        print(json.dumps(result))
        return 0
    natives: list[dict[str, float]] = []
    baselines: list[dict[str, float]] = []
    with_records: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "higgs.jsonl"
        convert(args.input, path)
        for _ in range(args.rounds):
            baselines.append(child("baseline", path))
            natives.append(child("native", path))
            with_records.append(child("native-records", path))
        python = child("python", path)
    command = "python -m benchmarks.embedded " + " ".join(argv or sys.argv[1:])
    text = report(natives, with_records, python, baselines, command)
    print(text)
    if args.write:
        args.write.write_text(replace_section(args.write, text))
    return 0


def replace_section(path: Path, section: str) -> str:
    """The Markdown file with this benchmark's section replaced in place (or appended)."""
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    start = existing.find("## Embedded engine on the Higgs stream")
    if start < 0:
        return existing.rstrip() + "\n\n" + section
    end = existing.find("\n## ", start + 3)
    rest = existing[end + 1 :] if end >= 0 else ""
    return existing[:start] + section + ("\n" + rest if rest else "")


if __name__ == "__main__":
    sys.exit(main())

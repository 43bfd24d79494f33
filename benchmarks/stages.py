"""Where an event's time goes in the embedded engine: CPU µs per event, stage by stage.

Replays the first lines of the Higgs stream again and again, each time doing one stage more
(decode; the actor step; the target step; reading the target's mass; its 1-100 score; the
change event; the engine's own bookkeeping), and reports the differences. The cyclic GC is
off while timing, so collections do not blur the split (`benchmarks.embedded` includes
them); each figure is the best of a few round-robin runs, in process CPU time. On a busy
machine a small stage can still come out a little off: raise --runs.

    python -m benchmarks.stages [--input HIGGS.gz] [--lines 150000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.embedded import DEFAULT_INPUT
from pipeline.codec import decode_higgs_line
from pipeline.engine import Engine
from scoring import (
    Event,
    Model,
    UserState,
    apply_action,
    apply_engagement,
    detect_change,
    load_model,
    new_user_state,
    read_mass,
    score_of,
)

STAGES = ("decode", "actor step", "target step", "mass", "score", "change event", "engine")


def _read(path: Path, lines: int) -> list[bytes]:
    with gzip.open(path, "rb") as stream:
        return list(itertools.islice(stream, lines))


def _decoded(raw: list[bytes]) -> list[Event]:
    events = [decode_higgs_line(line, number) for number, line in enumerate(raw, 1)]
    return [e for e in events if isinstance(e, Event)]


def _steps(events: list[Event], model: Model, read: Callable[[str, UserState], object]) -> None:
    """The engine's two steps over `events`, then `read` on each engaged target."""
    states: dict[str, UserState] = {}
    for event in events:
        actor = states.get(event.actor)
        if actor is None:
            actor = states[event.actor] = new_user_state(event.ts)
        engagement = apply_action(actor, event, model).engagement
        if engagement is not None:
            target = states.get(engagement.target)
            if target is None:
                target = states[engagement.target] = new_user_state(event.ts)
            apply_engagement(target, engagement, model)
            read(engagement.target, target)


def measure(raw: list[bytes], model: Model, runs: int) -> dict[str, float]:
    """µs per input line for each of `STAGES`."""
    events = _decoded(raw)

    def engine() -> None:
        run = Engine(model)
        for event in events:
            run.process(event)

    def only_actor() -> None:
        states: dict[str, UserState] = {}
        for event in events:
            state = states.get(event.actor)
            if state is None:
                state = states[event.actor] = new_user_state(event.ts)
            apply_action(state, event, model)

    def with_read(read: Callable[[str, UserState], object]) -> Callable[[], None]:
        return lambda: _steps(events, model, read)

    cumulative: list[Callable[[], object]] = [
        lambda: _decoded(raw),
        only_actor,
        with_read(lambda user, state: None),
        with_read(lambda user, state: read_mass(state, state.last_ts, model)),
        with_read(lambda user, state: score_of(read_mass(state, state.last_ts, model), model)),
        with_read(lambda user, state: detect_change(user, state, state.last_ts, model, "e")),
        engine,
    ]
    best = [float("inf")] * len(cumulative)
    for _ in range(runs):  # round robin: a busy moment of the machine hits every stage alike
        for i, work in enumerate(cumulative):
            started = time.process_time()
            work()
            best[i] = min(best[i], time.process_time() - started)
    costs = [seconds * 1e6 / len(raw) for seconds in best]
    split = [costs[0], costs[1]] + [b - a for a, b in itertools.pairwise(costs[1:])]
    return dict(zip(STAGES, split, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--lines", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    raw = _read(args.input, args.lines)
    gc.disable()
    split = measure(raw, load_model(), args.runs)
    total = sum(split.values())
    for stage in STAGES:
        print(f"{stage:<14} {split[stage]:6.2f} µs/event")
    print(f"{'total':<14} {total:6.2f} µs/event = {1e6 / total:,.0f} events/s without GC")
    return 0


if __name__ == "__main__":
    sys.exit(main())

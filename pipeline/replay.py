"""`influence replay`: score historical streams with the embedded engine.

Outputs are deterministic: the same input and model give byte-identical score events,
snapshots and dead letters, whatever the machine or hash seed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import orjson

from pipeline.codec import score_change_json
from pipeline.engine import Emitted, long_lived_states
from pipeline.native_engine import AnyEngine, Core, NativeEngine, make_engine
from pipeline.sources import decode_line, numbered_batches, numbered_lines, source_name
from scoring import Event, Model, UserState, read_mass, score_of
from scoring.events import ENGAGEMENT_KINDS, SOURCE_FOR_KIND, SOURCES
from scoring.history import history_body, history_from_row
from scoring.quality import audience_quality, confidence
from scoring.score import reasons, topic_scores
from scoring.windows import WINDOW_NAMES, read_windows

if TYPE_CHECKING:  # prometheus_client is imported only by a run that serves metrics
    from pipeline.metrics import PipelineMetrics

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    events: int
    by_kind: dict[str, int]
    users: int
    dead_letters: int
    duplicates: int
    self_engagements: int
    score_changes: int
    seconds: float
    """The whole run, engine creation to the last output byte (snapshot included): what the
    printed events/s divides by."""

    def line(self) -> str:
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.by_kind.items()))
        return (
            f"replayed {self.events:,} events ({kinds}) · {self.users:,} users · "
            f"{self.dead_letters:,} dead letters · {self.duplicates:,} duplicates · "
            f"{self.self_engagements:,} self-engagements ignored · "
            f"{self.score_changes:,} score changes · {rate:,.0f} events/s"
        )


def snapshot_line(user: str, state: UserState, now: int, model: Model) -> bytes:
    """One user's final state as the snapshot of INTERFACES.md."""
    return orjson.dumps(snapshot_record(user, state, now, model))


def snapshot_record(user: str, state: UserState, now: int, model: Model) -> dict[str, object]:
    """One user's state at event time `now`: the snapshot line's fields (also GET /users/{id})."""
    mass = read_mass(state, now, model)
    received = state.received
    counts = received.counts if received is not None else [0, 0, 0, 0]
    windows = read_windows(
        received.windows if received is not None else [[], [], []], now, model.minute_bucket_ms
    )
    topics = [(t.topic, t.score) for t in topic_scores(state, mass, model)]
    score = score_of(mass, model)
    quality = audience_quality(state, mass, model)
    evidence = (quality.score, list(quality.reasons), confidence(state, mass))
    fields = _snapshot_fields(
        user, score, mass.z, mass.effective, counts, windows, topics, model.model_version, evidence
    )
    fields["history"] = history_body(state.history, state.landmark)
    return fields


def _snapshot_fields(
    user: str,
    score: float,
    mass: float,
    effective: float,
    counts: Sequence[int],
    windows: dict[str, dict[str, int]],
    topics: Sequence[tuple[str, float]],
    version: str,
    evidence: tuple[float, Sequence[tuple[str, float]], float],
) -> dict[str, object]:
    """A snapshot line's fields, in the order INTERFACES.md shows (either core fills them)."""
    return {
        "user": user,
        "score": score,
        "mass": mass,
        "effective_mass": effective,
        "counts": dict(zip(ENGAGEMENT_KINDS, counts, strict=True)),
        "windows": windows,
        "topics": [{"topic": topic, "score": value} for topic, value in topics],
        "model_version": version,
        "audience_quality": {
            "score": evidence[0],
            "reasons": [{"rule": rule, "share": share} for rule, share in evidence[1]],
        },
        "confidence": evidence[2],
    }


def snapshot_lines(engine: AnyEngine, now: int) -> Iterator[bytes]:
    """Every user's snapshot line at event time `now`, in user-id order, built in Python
    (`snapshot_line`: the specification of the format; the compiled core writes the same
    bytes, `write_snapshot`)."""
    model = engine.model
    if not isinstance(engine, NativeEngine):
        for user, state in engine.users():
            yield snapshot_line(user, state, now, model)
        return
    version = model.model_version
    for row in engine.snapshots(now):
        user, score, mass, effective, counts, windows, topics, landmark, history = row[:9]
        quality, lost, level = row[9:]
        by_window = {
            name: dict(zip(ENGAGEMENT_KINDS, sums, strict=True))
            for name, sums in zip(WINDOW_NAMES, windows, strict=True)
        }
        evidence = (quality, lost, level)
        fields = _snapshot_fields(
            user, score, mass, effective, counts, by_window, topics, version, evidence
        )
        fields["history"] = history_body(history_from_row(history), landmark)
        yield orjson.dumps(fields)


def write_snapshot(engine: AnyEngine, now: int, out: BinaryIO) -> None:
    """Writes every user's snapshot line at event time `now` to `out`, in user-id order: the
    compiled core writes the bytes itself, a megabyte at a time (a Python dict per user was
    three quarters of a Higgs replay's time); the Python core writes `snapshot_lines`."""
    if isinstance(engine, NativeEngine):
        for chunk in engine.snapshot_json(now, engine.model.model_version):
            out.write(chunk)
        return
    for line in snapshot_lines(engine, now):
        out.write(line + b"\n")


def top_scores(engine: AnyEngine, now: int, count: int) -> list[tuple[float, str]]:
    """The `count` highest (score, user) at event time `now` among users who received
    engagement, ties by user id: the ranking of `--top` (and what GET /top must equal)."""
    model = engine.model
    scored: list[tuple[float, str]]
    if isinstance(engine, NativeEngine):
        scored = engine.scores(now)
    else:
        scored = [
            (score_of(read_mass(state, now, model), model), user)
            for user, state in engine.states.items()
            if state.received is not None
        ]
    scored.sort(key=lambda row: (-row[0], row[1]))
    return scored[:count]


def top_table(engine: AnyEngine, now: int, count: int) -> str:
    """The `count` highest-scored users with their top reasons, as a small text table."""
    model = engine.model
    lines = [f"{'user':<20} {'score':>6}  reasons"]
    for score, user in top_scores(engine, now, count):
        state = engine.states[user]
        why = reasons(state, read_mass(state, now, model), model)[:4]
        described = ", ".join(f"{r.code} {r.points:+.1f}" for r in why)
        lines.append(f"{user:<20} {score:>6.2f}  {described}")
    return "\n".join(lines)


def _progress(total: int | None) -> object | None:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: object = tqdm(total=total, unit=" ev", unit_scale=True, file=sys.stderr, mininterval=0.5)
    return bar


def replay(
    paths: list[str],
    model: Model,
    *,
    fmt: str = "auto",
    events_out: BinaryIO | None = None,
    snapshot_out: BinaryIO | None = None,
    dead_letter_out: BinaryIO | None = None,
    as_of: int | None = None,
    show_progress: bool = True,
    metrics: PipelineMetrics | None = None,
    core: Core | None = None,
) -> tuple[AnyEngine, ReplaySummary]:
    """Runs the embedded engine over `paths` and writes the requested outputs.

    The engine is the compiled core unless `core` (or $INFLUENCE_CORE) says ``python``; it
    scores a megabyte of lines per call. With `metrics`, lines go one at a time: the engine's
    counts are read when /metrics is scraped (nothing per event), score changes are counted by
    cause, dead letters by reason, and one event in `LATENCY_SAMPLE_EVERY` is timed for the
    latency histogram.
    """
    started = time.perf_counter()
    engine = make_engine(model, core)
    if metrics is not None:
        watch_engine(metrics, engine)
    run = _Outputs(model.model_version, events_out, dead_letter_out, metrics)
    bar = _progress(None) if show_progress else None
    with long_lived_states():
        for path in paths:
            if isinstance(engine, NativeEngine) and metrics is None:
                _score_batches(engine, path, fmt, run, bar)
            else:
                _score_lines(engine, path, fmt, run, bar)
    if bar is not None:
        bar.close()  # type: ignore[attr-defined]
    end = as_of if as_of is not None else engine.now
    if end is not None and as_of is not None:
        decayed = engine.advance_to(as_of)
        if metrics is not None:
            for e in decayed:
                metrics.score_change(e.change.cause)
        run.write(decayed)
    if snapshot_out is not None and end is not None:
        write_snapshot(engine, end, snapshot_out)
    seconds = time.perf_counter() - started  # the whole run: scoring and every output
    stats = engine.stats
    summary = ReplaySummary(
        events=sum(stats.events.values()),
        by_kind=dict(stats.events),
        users=len(engine.states),
        dead_letters=run.dead_letters,
        duplicates=stats.duplicates,
        self_engagements=stats.self_engagements,
        score_changes=stats.score_changes,
        seconds=seconds,
    )
    return engine, summary


LATENCY_SAMPLE_EVERY = 64
"""Time one event in this many: two clock reads per event would cost more than they tell."""


def watch_engine(metrics: PipelineMetrics, engine: AnyEngine) -> None:
    """Makes `metrics` read the engine's own counters at each scrape, and name its core."""
    from pipeline.metrics import StateSize

    metrics.core = "native" if isinstance(engine, NativeEngine) else "python"

    def copy_counts(m: PipelineMetrics) -> None:
        stats = engine.stats
        m.consumed_counts = {
            (SOURCES[SOURCE_FOR_KIND[k]], k): n for k, n in dict(stats.events).items()
        }
        m.duplicate_counts = {"actor": stats.duplicates} if stats.duplicates else {}
        if engine.now is not None:
            m.event_time(engine.now)

    metrics.counts_provider = copy_counts
    metrics.state_provider = lambda: StateSize(len(engine.states), None)


class _Outputs:
    """Where a replay's score events and dead letters go, and what it counted."""

    def __init__(
        self,
        version: str,
        events_out: BinaryIO | None,
        dead_letter_out: BinaryIO | None,
        metrics: PipelineMetrics | None,
    ) -> None:
        self.version = version
        self.events_out = events_out
        self.dead_letter_out = dead_letter_out
        self.metrics = metrics
        self.dead_letters = 0
        self.lines = 0

    def decoded(self, raw: bytes, fmt: str, number: int, source: str) -> Event | None:
        """The event on a line, or None after sending the line to the dead letters."""
        item = decode_line(raw, fmt, number, source)
        if isinstance(item, Event):
            return item
        self.dead_letters += 1
        if self.dead_letter_out is not None:
            self.dead_letter_out.write(item.to_json() + b"\n")
        if self.metrics is not None:
            self.metrics.invalid(item.reason)
            self.metrics.dead_letter(item.reason)
        return None

    def write_lines(self, lines: bytes) -> None:
        """Score events already written as --events-out lines (by the compiled core)."""
        if self.events_out is not None and lines:
            self.events_out.write(lines)

    def write(self, emitted: Sequence[Emitted]) -> None:
        if self.events_out is not None:
            for e in emitted:
                self.events_out.write(score_change_json(e.change, e.cause_id, self.version) + b"\n")


def _score_lines(engine: AnyEngine, path: str, fmt: str, out: _Outputs, bar: object) -> None:
    """One line at a time: the Python engine, or any engine while metrics are served (one
    event in `LATENCY_SAMPLE_EVERY` is timed)."""
    source = source_name(path)
    for number, line_fmt, raw in numbered_lines(path, fmt):
        out.lines += 1
        if bar is not None and out.lines % 4096 == 0:
            bar.update(4096)  # type: ignore[attr-defined]
        emitted = _score_raw(engine, raw, line_fmt, number, out.metrics, out.lines)
        if emitted is None:
            event = out.decoded(raw, line_fmt, number, source)
            if event is None:
                continue
            emitted = _observed(engine.process, event, out.metrics, out.lines) or []
        out.write(emitted)


def _score_batches(engine: NativeEngine, path: str, fmt: str, out: _Outputs, bar: object) -> None:
    """A megabyte of lines at a time, scored by the compiled engine without a Python step
    per line; only the lines it leaves (other shapes, invalid ones) are decoded here."""
    source = source_name(path)
    keep = out.events_out is not None
    for first, line_fmt, batch in numbered_batches(path, fmt):
        higgs_first = first if line_fmt == "higgs" else None
        index = 0
        while index < len(batch):
            index = engine.score_lines(batch, index, higgs_first, keep)
            if keep:
                out.write_lines(engine.take_changes_json(out.version))
            if index < len(batch):
                raw = batch[index].rstrip(b"\r\n")
                if raw.strip():
                    event = out.decoded(raw, line_fmt, first + index, source)
                    if event is not None:
                        out.write(engine.process(event))
                index += 1
        out.lines += len(batch)
        if bar is not None:
            bar.update(len(batch))  # type: ignore[attr-defined]


def _score_raw(
    engine: AnyEngine,
    raw: bytes,
    fmt: str,
    number: int,
    metrics: PipelineMetrics | None,
    count: int,
) -> Sequence[Emitted] | None:
    """The compiled engine scores the usual line without a Python event; None otherwise."""
    if not isinstance(engine, NativeEngine):
        return None
    if fmt == "jsonl":
        return _observed(engine.process_json, raw, metrics, count)
    return _observed(lambda line: engine.process_higgs(line, number), raw, metrics, count)


def _observed(
    step: Callable[[T], Sequence[Emitted] | None],
    item: T,
    metrics: PipelineMetrics | None,
    count: int,
) -> Sequence[Emitted] | None:
    """Runs one scoring step, timing one in `LATENCY_SAMPLE_EVERY` and counting changes."""
    if metrics is None:
        return step(item)
    if count % LATENCY_SAMPLE_EVERY:
        emitted = step(item)
    else:
        started = time.perf_counter()
        emitted = step(item)
        metrics.latency(time.perf_counter() - started)
    for e in emitted or ():
        metrics.score_change(e.change.cause)
    return emitted


def open_output(path: str | None, stack: ExitStack) -> BinaryIO | None:
    """A binary output for a path, ``-`` for stdout, None when not requested."""
    if path is None:
        return None
    if path == "-":
        return sys.stdout.buffer
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(target.open("wb"))

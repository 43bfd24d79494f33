"""The real SNAP Higgs stream (563,069 interactions): exact counts, determinism, prediction."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from pipeline.codec import decode_higgs_line
from pipeline.engine import Engine
from pipeline.replay import replay
from scoring import Event, Model, read_mass
from scoring.model import DAY_MS

KINDS = {"RT": "retweet", "MT": "mention", "RE": "reply"}

pytestmark = pytest.mark.slow


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho with average ranks for ties."""

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5


def test_full_replay_counts_each_event_once_and_is_byte_identical(
    higgs: Path, model: Model
) -> None:
    expected: Counter[str] = Counter()
    self_lines = 0
    with gzip.open(higgs, "rt") as lines:
        for line in lines:
            actor, target, _, code = line.split()
            if actor == target:
                self_lines += 1
            else:
                expected[KINDS[code]] += 1
    digests = []
    for _ in range(2):
        events, snapshot = io.BytesIO(), io.BytesIO()
        _, summary = replay(
            [str(higgs)], model, events_out=events, snapshot_out=snapshot, show_progress=False
        )
        digests.append(
            (
                hashlib.sha256(events.getvalue()).hexdigest(),
                hashlib.sha256(snapshot.getvalue()).hexdigest(),
            )
        )
    assert digests[0] == digests[1]
    assert summary.self_engagements == self_lines == 7_588
    assert summary.dead_letters == 0 and summary.duplicates == 0
    received: Counter[str] = Counter()
    for line in snapshot.getvalue().splitlines():
        received.update(orjson.loads(line)["counts"])
    assert +received == expected
    assert sum(expected.values()) + self_lines == 563_069


def test_mass_after_four_days_predicts_later_retweeters(higgs: Path, model: Model) -> None:
    engine = Engine(model)
    cut: int | None = None
    future: defaultdict[str, set[str]] = defaultdict(set)
    with gzip.open(higgs, "rb") as lines:
        for number, line in enumerate(lines, 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event)
            if cut is None:
                cut = (event.ts // DAY_MS + 4) * DAY_MS
            if event.ts < cut:
                engine.process(event)
            elif event.kind == "retweet" and event.actor != event.target:
                future[event.target].add(event.actor)
    assert cut is not None
    candidates = [u for u, s in engine.states.items() if s.received is not None]
    masses = [read_mass(engine.states[u], cut, model).z for u in candidates]
    retweeters = [float(len(future[u])) for u in candidates]
    rho = spearman(masses, retweeters)
    print(f"Higgs prediction: Spearman {rho:.4f} over {len(candidates)} candidates")
    assert len(candidates) > 40_000
    assert rho >= 0.325

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
from pipeline.native_engine import NativeEngine
from pipeline.replay import replay
from scoring import Event, Model, load_model, read_mass
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


MODELS = Path(__file__).resolve().parents[1] / "scoring/models"
GOALS = {"v1": 0.325, "v2": 0.36}
"""Spearman each bundled version must reach (model 1 measured 0.336, model 2 0.363)."""


@pytest.mark.parametrize("version", sorted(GOALS))
def test_mass_after_four_days_predicts_later_retweeters(higgs: Path, version: str) -> None:
    """Train on days 1-4, predict distinct retweeters on days 5-7, beside two simple counts:
    raw engagements received, and distinct engagers of every kind (0.322 and 0.362)."""
    model = load_model(MODELS / f"{version}.toml")
    # v1 on the Python core (the workers' one), v2 on the compiled one (test_native.py holds
    # them equal on both versions; Python would take minutes here)
    engine: Engine | NativeEngine = Engine(model) if version == "v1" else NativeEngine(model)
    cut: int | None = None
    future: defaultdict[str, set[str]] = defaultdict(set)
    raw: Counter[str] = Counter()
    engagers: defaultdict[str, set[str]] = defaultdict(set)
    with gzip.open(higgs, "rb") as lines:
        for number, line in enumerate(lines, 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event)
            if cut is None:
                cut = (event.ts // DAY_MS + 4) * DAY_MS
            if event.ts < cut:
                engine.process(event)
                if event.target is not None and event.actor != event.target:
                    raw[event.target] += 1
                    engagers[event.target].add(event.actor)
            elif event.kind == "retweet" and event.actor != event.target:
                future[event.target].add(event.actor)
    assert cut is not None
    states = engine.states
    candidates = [u for u in states if states[u].received is not None]
    retweeters = [float(len(future[u])) for u in candidates]
    rho = spearman([read_mass(states[u], cut, model).z for u in candidates], retweeters)
    raw_rho = spearman([float(raw[u]) for u in candidates], retweeters)
    distinct_rho = spearman([float(len(engagers[u])) for u in candidates], retweeters)
    print(
        f"Higgs prediction, model {model.model_version}: Spearman {rho:.4f} over "
        f"{len(candidates)} candidates · raw count {raw_rho:.4f} · distinct engagers "
        f"{distinct_rho:.4f}"
    )
    assert len(candidates) > 40_000
    assert rho >= GOALS[version]

"""Scenario tests' kit: a generated background of ordinary users plus injected scenario events,
scored by the embedded engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.native_engine import AnyEngine, make_engine
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Event, Model, load_model, parse_event, read_mass, score_of
from scoring.model import DAY_MS

MODELS = Path(__file__).resolve().parents[1] / "scoring/models"
VERSIONS = ("v1", "v2")
"""The bundled model versions every scenario and adversary is held to."""


def bundled_model(version: str) -> Model:
    return load_model(MODELS / f"{version}.toml")


BACKGROUND = GeneratorConfig(users=400, days=45, seed=5)
START = BACKGROUND.start_ms
END = START + BACKGROUND.days * DAY_MS


def background_events(config: GeneratorConfig = BACKGROUND) -> list[dict[str, object]]:
    return list(generate(config))


def background_users(events: Iterable[Mapping[str, object]]) -> list[str]:
    return sorted({str(e["actor"]) for e in events})


def _parsed(events: Iterable[Mapping[str, object]]) -> list[Event]:
    out = []
    for raw in events:
        event = parse_event(raw)
        assert isinstance(event, Event), event
        out.append(event)
    out.sort(key=lambda e: (e.ts, e.id))
    return out


@dataclass
class Run:
    """An engine that has consumed a merged stream up to some event time."""

    engine: AnyEngine
    model: Model

    def score(self, user: str, at: int) -> float:
        return score_of(read_mass(self.engine.states[user], at, self.model), self.model)

    def engaged_scores(self, at: int) -> list[float]:
        return sorted(
            score_of(read_mass(state, at, self.model), self.model)
            for state in self.engine.states.values()
            if state.received is not None
        )


def run(model: Model, *streams: Iterable[Mapping[str, object]], until: int | None = None) -> Run:
    """Scores the merged streams with the engine `influence replay` uses (the compiled core;
    tests/test_native.py holds it equal to the Python one)."""
    engine = make_engine(model)
    merged = _parsed(e for stream in streams for e in stream)
    for event in merged:
        if until is not None and event.ts >= until:
            break
        engine.process(event)
    return Run(engine, model)


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]

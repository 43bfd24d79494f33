"""Determinism of the embedded engine (issue 5): the same history and model give the same final
state, byte for byte, and the same score-change events, in one process or in two processes
with different hash seeds (set and dict iteration orders differ between them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.codec import score_change_json
from pipeline.engine import Engine
from pipeline.sources import read_events
from pipeline.synthetic import GeneratorConfig, generate, write_jsonl
from scoring import Event, Model, encode_state

STREAM = GeneratorConfig(users=200, days=16, seed=8, scenarios=("ring", "party"))


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("determinism") / "stream.jsonl"
    with path.open("wb") as out:
        write_jsonl(generate(STREAM), out)
    return path


def run(path: Path, model: Model) -> tuple[dict[str, bytes], list[bytes]]:
    engine = Engine(model)
    events: list[bytes] = []
    for item in read_events(str(path)):
        assert isinstance(item, Event)
        for e in engine.process(item):
            events.append(score_change_json(e.change, e.cause_id, model.model_version))
    return {user: encode_state(state) for user, state in engine.users()}, events


def test_two_replays_give_identical_state_and_events(stream: Path, model: Model) -> None:
    first_state, first_events = run(stream, model)
    second_state, second_events = run(stream, model)
    assert len(first_events) > 100 and len(first_state) > 200
    assert first_state == second_state
    assert first_events == second_events


def test_replays_under_different_hash_seeds_are_byte_identical(
    stream: Path, tmp_path: Path
) -> None:
    outputs = []
    for seed in ("1", "4242"):
        out = tmp_path / seed
        out.mkdir()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "replay",
                str(stream),
                "--events-out",
                str(out / "events.jsonl"),
                "--snapshot-out",
                str(out / "snapshot.jsonl"),
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            timeout=300,
        )
        outputs.append(((out / "events.jsonl").read_bytes(), (out / "snapshot.jsonl").read_bytes()))
    assert outputs[0][0] and outputs[0][1]
    assert outputs[0] == outputs[1]

"""Shared fixtures: the bundled model and small event builders."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring import Event, Model, load_model
from scoring.model import DAY_MS, HOUR_MS

T0 = 1_735_689_600_000
"""2025-01-01T00:00:00Z, the start of every hand-built test stream."""


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


class Events:
    """Builds v1 events with unique ids; times are given in days and hours from T0."""

    def __init__(self) -> None:
        self._ids: Iterator[int] = itertools.count(1)

    def at(self, day: float = 0.0, hour: float = 0.0) -> int:
        return T0 + int(day * DAY_MS + hour * HOUR_MS)

    def __call__(
        self,
        kind: str,
        actor: str,
        target: str | None = None,
        *,
        day: float = 0.0,
        hour: float = 0.0,
        **fields: object,
    ) -> Event:
        return Event(
            id=f"e{next(self._ids)}",
            kind=kind,
            ts=self.at(day, hour),
            actor=actor,
            target=target,
            **fields,  # type: ignore[arg-type]
        )


@pytest.fixture
def ev() -> Events:
    return Events()


HIGGS = Path(
    os.environ.get(
        "INFLUENCE_HIGGS",
        Path(__file__).resolve().parents[2] / "shared/data/higgs-activity_time.txt.gz",
    )
)
"""The SNAP Higgs stream; CI has ../shared beside the clone, so there it must exist."""


@pytest.fixture(scope="session")
def higgs() -> Path:
    """The Higgs file, or a failure that says where it was looked for: a test that needs
    it never skips (a skip in a clone without ../shared looked like a pass)."""
    if not HIGGS.exists():
        pytest.fail(f"Higgs data missing at {HIGGS} (set INFLUENCE_HIGGS)", pytrace=False)
    return HIGGS

"""What a scenario is to the generator: a name, what it needs, and where it goes by default.

Each scenario module defines one ``Scenario``; ``registry`` collects them by name. A scenario's
``place`` sees only a ``Placement`` (the span, the background users and a seeded generator),
not the generator's config, so scenario modules never import the generator.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.synthetic.events import Event

__all__ = ["Placement", "Scenario"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and with whom a scenario is placed inside a generated stream."""

    start_ms: int
    """Start of the generator's span."""
    end_ms: int
    """End of the span (exclusive)."""
    days: int
    """Length of the span in whole days."""
    users: Sequence[str]
    """Background user ids the scenario may draw engagers from."""
    rng: random.Random
    """Seeded with the generator's seed and the scenario's name: placing one scenario never
    changes another's events."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """An injectable scenario: ``place`` puts it at its default place in a span."""

    name: str
    """The name ``--scenario`` and ``GeneratorConfig.scenarios`` use."""
    min_days: int
    """Shortest span (days) that fits the default placement."""
    min_users: int
    """Fewest background users the default placement draws engagers from."""
    place: Callable[[Placement], list[Event]]
    """The scenario's events at its default placement, sorted by ``(ts, id)``."""

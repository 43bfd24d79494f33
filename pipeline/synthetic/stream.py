"""The generated stream: the background merged with the scenarios at their default placements.

Everything is derived from ``GeneratorConfig.seed``: the same config gives the same events,
byte for byte (tests and benchmarks pin seeds and rely on it).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO

import orjson

from pipeline.synthetic.background import Background
from pipeline.synthetic.config import GeneratorConfig
from pipeline.synthetic.events import Event, event_order
from pipeline.synthetic.placement import Placement
from pipeline.synthetic.population import build_population
from pipeline.synthetic.registry import scenario

__all__ = ["generate", "inject", "write_jsonl"]

WRITE_CHUNK = 4096
"""Events serialised per ``write`` call in ``write_jsonl``."""


def inject(name: str, background_user_ids: Sequence[str], config: GeneratorConfig) -> list[Event]:
    """Scenario ``name`` at its default place in ``config``'s span, sorted by ``(ts, id)``.

    Where that is, each scenario's module says (``pipeline.synthetic.ring`` …). Engagers are
    drawn from ``background_user_ids`` by a generator seeded with the config's seed and the
    scenario name. Raises ``ValueError`` for an unknown name, a span shorter than the
    scenario's ``min_days`` or fewer background users than its ``min_users``.
    """
    chosen = scenario(name)
    if config.days < chosen.min_days:
        raise ValueError(f"scenario {name!r} needs at least {chosen.min_days} days")
    if len(background_user_ids) < chosen.min_users:
        raise ValueError(f"scenario {name!r} needs {chosen.min_users} background users")
    placement = Placement(
        start_ms=config.start_ms,
        end_ms=config.end_ms,
        days=config.days,
        users=list(background_user_ids),
        rng=random.Random(f"{config.seed}/{name}"),
    )
    return chosen.place(placement)


def generate(config: GeneratorConfig) -> Iterator[Event]:
    """v1 event dicts (INTERFACES.md schema), sorted by ``(ts, id)``, with unique string ids:
    the background population merged with ``config.scenarios`` at their default placements.

    Background users that engage in a scenario carry their background follower count.
    """
    population = build_population(config)
    background = Background(config, population).events()
    if not config.scenarios:
        return background
    followers = dict(zip(population.user_ids, population.followers, strict=True))
    injected: list[Event] = []
    for name in config.scenarios:
        injected += inject(name, population.user_ids, config)
    for event in injected:
        actor = event["actor"]
        if isinstance(actor, str) and actor in followers:
            event["followers"] = followers[actor]
    injected.sort(key=event_order)
    return heapq.merge(background, injected, key=event_order)


def write_jsonl(events: Iterable[Mapping[str, object]], out: BinaryIO) -> int:
    """Write ``events`` as JSON lines (orjson, UTF-8) to ``out``; returns how many."""
    count = 0
    chunk: list[bytes] = []
    for event in events:
        chunk.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        if len(chunk) == WRITE_CHUNK:
            out.write(b"".join(chunk))
            count += len(chunk)
            chunk.clear()
    out.write(b"".join(chunk))
    return count + len(chunk)

"""``slow-ring``: a ring that stays under the burst and automation rules (adversary of §3).

Each member retweets every other member's daily tweet once a day for two weeks: 19 retweets a
day, spread over the day, so no member acts 30 times an hour (automation) and, after the first
days, no member's day is above its own baseline (bursts). Only reciprocity can see it.
Placed over the last 14 days of the span; draws no background engagers.
"""

from __future__ import annotations

from pipeline.synthetic.events import DAY_MS, Event
from pipeline.synthetic.placement import Placement, Scenario
from pipeline.synthetic.ring import ring_events

__all__ = ["SCENARIO", "SLOW_RING_PREFIX", "slow_ring_events"]

SLOW_RING_PREFIX = "slowring"
"""Members are ``slowring-00`` … ``slowring-19``."""
SLOW_RING_DAYS = 14
SLOW_RING_EVERY_HOURS = 24
"""One round a day: each member tweets once and retweets each of the others once."""


def slow_ring_events(
    start_ms: int, *, members: int = 20, days: int = SLOW_RING_DAYS
) -> list[Event]:
    """``members`` accounts retweeting each other once a day for ``days`` days from
    ``start_ms`` (14 rounds x (20 tweets + 380 retweets) = 5,600 events by default)."""
    return ring_events(
        start_ms,
        members=members,
        days=days,
        every_hours=SLOW_RING_EVERY_HOURS,
        prefix=SLOW_RING_PREFIX,
    )


def place(at: Placement) -> list[Event]:
    """``slow_ring_events`` from ``E - 14 d``."""
    return slow_ring_events(at.end_ms - SLOW_RING_DAYS * DAY_MS)


SCENARIO = Scenario("slow-ring", min_days=SLOW_RING_DAYS, min_users=0, place=place)

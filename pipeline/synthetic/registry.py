"""The scenarios by name: what ``--scenario`` and ``GeneratorConfig.scenarios`` accept.

A new scenario is a module with a ``SCENARIO`` and one line here. The order is the order of
``influence generate --help`` and of the names in error messages; it does not change any
stream (each placement has its own seeded generator).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pipeline.synthetic import (
    engagement_pod,
    follow_train,
    new_account,
    party,
    ring,
    slow_ring,
    vacation,
    viral_retweet,
)
from pipeline.synthetic.placement import Scenario

__all__ = ["SCENARIOS", "scenario"]

SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        s.name: s
        for s in (
            ring.SCENARIO,
            party.SCENARIO,
            vacation.SCENARIO,
            viral_retweet.SCENARIO,
            new_account.SCENARIO,
            slow_ring.SCENARIO,
            follow_train.SCENARIO,
            engagement_pod.SCENARIO,
        )
    }
)
"""Every injectable scenario, by name (read-only)."""


def scenario(name: str) -> Scenario:
    """The scenario called ``name``, or ``ValueError`` naming the ones there are."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}"
        ) from None

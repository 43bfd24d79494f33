"""Seeded random fault schedules for the in-process driver (`pipeline.driver`): drawn as
plain tuples (`Action`), so a failing one prints and shrinks (`shrink`); what a finished run
got wrong against the embedded engine (`discrepancies`). `tests.fault_run` carries them out;
tests/test_topology_faults.py says what a schedule holds."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.driver import Driver
from scoring import Event, read_mass
from tests.integration.test_pipeline import exact_score
from tests.test_topology import PARTITIONS, embedded

Action = tuple[Any, ...]
"""("ticks", worker, n, seed): n moves of the worker's concurrent tasks (`Tasks.tick`) |
("pipe", n) | ("step", worker, limit, commit) | ("steps", limit) | ("rewind", worker) |
("crash", worker) | ("start", worker) | ("assign", ((worker, partitions), ...)) |
("sleep", seconds) | ("midbatch", worker, flow, assignment) |
("killbatch", worker, batches, seed): a kill -9 inside a batch (`Run.kill_in_batch`)"""

NAMES = ("w0", "w1", "w2")


def placement(seed: int, events: Sequence[Event], forwarded: float) -> list[int | None]:
    """Per input: the partition a producer on another partitioner put it in, or None (its
    actor's partition)."""
    rng = random.Random(seed * 7919 + 1)
    return [rng.randrange(PARTITIONS) if rng.random() < forwarded else None for _ in events]


def random_assignment(
    rng: random.Random, live: Sequence[str]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Every partition to one live worker (a worker may get none)."""
    owners: dict[str, list[int]] = {name: [] for name in live}
    for partition in range(PARTITIONS):
        owners[rng.choice(list(live))].append(partition)
    return tuple((name, tuple(parts)) for name, parts in owners.items())


def draw_schedule(seed: int, total: int) -> tuple[int, list[Action]]:
    """A worker count and a schedule for `total` inputs: the faults drawn as the run would
    see them (a worker's state, alive or dead, tracked while drawing)."""
    rng = random.Random(seed)
    workers = rng.choice((2, 2, 3))
    names = list(NAMES[:workers])
    alive = set(names)
    actions: list[Action] = [("assign", random_assignment(rng, names))]
    piped = 0
    concurrent = rng.random() < 0.5
    for _ in range(rng.randint(20, 60) * (3 if concurrent else 1)):
        roll = rng.random()
        live = sorted(alive)
        if concurrent and rng.random() < 0.6:
            actions.append(("ticks", rng.choice(live), rng.randint(1, 30), rng.getrandbits(32)))
        elif piped < total and (roll < 0.25 or piped == 0):
            n = min(total - piped, rng.choice((1, 10, 100, 400, 1000)))
            actions.append(("pipe", n))
            piped += n
        elif roll < 0.55:
            limit = rng.choice((1, 5, 50, 150, None))
            actions.append(("step", rng.choice(live), limit, rng.random() < 0.6))
        elif roll < 0.62:
            actions.append(("steps", rng.choice((10, 100, None))))
        elif roll < 0.68:
            actions.append(("rewind", rng.choice(live)))
        elif roll < 0.76 and len(live) > 1:
            dead = rng.choice(live)
            actions.append(("step", dead, rng.choice((5, 50, 150)), False))
            actions.append(("crash", dead))
            alive.discard(dead)
            survivors = sorted(alive)
            # The survivors read on while the session times out (or not: a short sleep).
            for _ in range(rng.randint(0, 3)):
                actions.append(("step", rng.choice(survivors), rng.choice((50, 150, None)), True))
            actions.append(("sleep", rng.choice((6.0, 6.0, 1.0, 31.0))))
            actions.append(("assign", random_assignment(rng, survivors)))
        elif roll < 0.79 and len(live) > 1:
            dead = rng.choice(live)
            actions.append(("killbatch", dead, rng.randrange(3), rng.getrandbits(32)))
            alive.discard(dead)
            actions.append(("sleep", 6.0))
            actions.append(("assign", random_assignment(rng, sorted(alive))))
        elif roll < 0.84 and len(alive) < workers:
            back = rng.choice(sorted(set(names) - alive))
            actions.append(("start", back))
            alive.add(back)
            actions.append(("assign", random_assignment(rng, sorted(alive))))
        elif roll < 0.90:
            actions.append(("assign", random_assignment(rng, live)))
        elif roll < 0.95:
            actions.append(
                (
                    "midbatch",
                    rng.choice(live),
                    rng.choice(("inputs", "engagements")),
                    random_assignment(rng, live),
                )
            )
        else:
            actions.append(("sleep", rng.choice((0.0, 0.5, 1.0, 6.0, 31.0))))
    if piped < total:
        actions.append(("pipe", total - piped))
    return workers, actions


def data_dirs(seed: int) -> bool:
    """Whether the seed's workers run on data dirs of their own (RocksDB, as deployed)."""
    return seed % 3 != 2


def forwarded_share(seed: int) -> float:
    return (0.0, 0.0, 0.1, 0.33)[seed % 4]


def discrepancies(driver: Driver, events: Sequence[Event]) -> dict[str, list[Any]]:
    """What `assert_as_embedded` asserts, all of it collected: users missing from (or extra
    in) the store, users whose counters differ (work lost or applied twice), users whose
    score is more than 0.01 off (work applied out of order)."""
    model = driver.model
    engine = embedded(tuple(events), model)
    users = driver.users()
    at = engine.now
    assert at is not None
    found: dict[str, list[Any]] = {
        "missing": sorted(set(engine.states) - set(users)),
        "extra": sorted(set(users) - set(engine.states)),
        "counts": [],
        "scores": [],
    }
    for user, state in engine.states.items():
        if user not in users:
            continue
        stored = users[user].state
        expected = state.received.counts if state.received else None
        actual = stored.received.counts if stored.received else None
        if actual != expected:
            found["counts"].append((user, actual, expected))
        want = exact_score(read_mass(state, at, model).z, model)
        got = exact_score(read_mass(stored, at, model).z, model)
        if abs(got - want) > 0.01:
            found["scores"].append((user, round(got, 3), round(want, 3)))
    return {kind: rows for kind, rows in found.items() if rows}


def shrink(actions: list[Action], fails: Callable[[list[Action]], bool]) -> list[Action]:
    """The schedule with every action removed whose removal keeps it failing (greedy,
    chunks first)."""
    chunk = max(1, len(actions) // 2)
    while chunk >= 1:
        i = 0
        while i < len(actions):
            candidate = actions[:i] + actions[i + chunk :]
            if fails(candidate):
                actions = candidate
            else:
                i += chunk
        chunk //= 2
    return actions

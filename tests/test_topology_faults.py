"""Seeded random fault schedules over the in-process driver (`pipeline.driver`).

Each seed draws a schedule of the faults a broker deployment meets, interleaved at random
with the work: steps of random workers with random fetch limits, some without a commit;
kills (`Driver.crash`) followed by the session timeout and a rebalance of the dead worker's
partitions to the survivors; restarts over the stored users and rebalances back; seeks to
the committed offsets (`Worker.rewind`); rebalances while inputs and engagements are held,
and in the middle of a batch taken from the holds; inputs piped while all of this happens,
some on another partitioner (forwarded); kills in the middle of a batch (some outputs or
changelog records sent, not all; on a data dir, between its users' two writes). In two
seeds of three the workers run on data dirs of their own (RocksDB, kept across restarts);
in half of them a worker's agents and timers run as concurrent tasks (`Tasks`: a timer's
delivery suspended at the batch lock while an agent's runs, as the Faust runner interleaves
them), which the driver's own steps never do. The run ends with a stable assignment and
`Driver.run`, and must end as the embedded engine ends (`assert_as_embedded`); when the
schedule sleeps past `merge_max_wait_s` (the merges then stop waiting for silent sources,
by design) only the counters are held equal.

A schedule is a list of plain tuples (`Action`), drawn first and then carried out, so a
failing one prints and shrinks (`shrink`): an action that no longer makes sense after
others were removed (a restart of a live worker, an assignment naming a dead one) is
skipped. The default suite runs a few seeds; `FUZZ_SEEDS=n` runs n of them.
"""

from __future__ import annotations

import os

import pytest

from pipeline.driver import Driver, driver_settings
from scoring import Model, load_model
from tests.conftest import Events
from tests.fault_run import check
from tests.fault_schedule import Action
from tests.test_topology import assert_as_embedded

SEEDS = int(os.environ.get("FUZZ_SEEDS", "6"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_random_fault_schedule_ends_as_the_embedded_engine(model: Model, seed: int) -> None:
    check(model, seed)


def test_a_kill_between_a_batchs_two_user_writes_loses_no_user(model: Model) -> None:
    """A RocksDB worker killed -9 after a batch's users reached its store and before their
    changelog records reached the broker (`faust_runner.Pipeline.run_batch` wrote the store
    first), restarted on its data dir: the store holds the users, the changelog does not,
    and the redelivered input is skipped as seen, so they are never written to the
    changelog, which every other worker (and `influence replay`'s comparison) restores
    from. The real-broker kill test under load ended with users missing from the changelog.
    """
    ev = Events()
    events = [ev("retweet", "fan", "star", day=0, followers=100)]
    driver = Driver(model, driver_settings(1))
    driver.start("a", data_dir=True)
    driver.assign({"a": [0]})
    for event in events:
        driver.pipe_input(event)
    assert driver.crash_writing_users("a")
    driver.start("a", data_dir=True)
    driver.assign({"a": [0]})
    driver.run()
    assert set(driver.users()) == {"fan", "star"}
    assert_as_embedded(driver, events)


TARGET_AHEAD: list[Action] = [
    ("assign", (("w0", (3,)), ("w1", (0, 1, 2)))),
    ("pipe", 3000),
    ("step", "w1", 150, False),
    ("step", "w1", None, True),
    ("assign", (("w0", (1, 2, 3)), ("w1", (0,)))),
    ("step", "w0", 150, False),
    ("steps", None),
    ("pipe", 84),
    ("assign", (("w0", (0, 1, 3)), ("w1", (2,)))),
    ("step", "w1", 50, True),
    ("assign", (("w0", (0,)), ("w1", (1, 2, 3)))),
    ("step", "w1", 5, False),
    ("step", "w1", 150, True),
    ("step", "w1", 5, False),
    ("steps", 100),
    ("step", "w1", 5, True),
    ("rewind", "w1"),
    ("steps", 100),
    ("step", "w1", 1, True),
    ("sleep", 6.0),
]
"""Seed 115's schedule shrunk: no kill, no wait past `merge_max_wait_s`."""


def test_a_partition_whose_fetch_is_late_still_holds_its_actors_later_inputs() -> None:
    """Seed 115 (under model 1; under model 2 the same misorder leaves the score within
    0.01): w1 owns partition 3 with retweets-3 not yet fetched past day 4 and the other
    partitions (a forward partition among them) fetched to day 9. The 6 s sleep is a fetch
    that comes late (the broker holds retweets-3's events; the worker's loop or the broker
    is slow); with `align_max_wait_s` at 1 s the aligner gave up on retweets-3, applied
    u0048's forwarded retweet of u0043 from day 9 before its own from day 4, so the pair
    factor went to the wrong one, and u0043 ended 0.1 points off."""
    check(load_model("v1"), 115, TARGET_AHEAD)

"""What a worker announces of its input partitions (`InputFlow.input_progress`)."""

from __future__ import annotations

from typing import Any, cast

from faust.types import TP

from pipeline.merge import Progress
from pipeline.ordering import InputFlow
from pipeline.settings import Settings
from pipeline.topology import Topology
from scoring import load_model

RETWEETS, MENTIONS = TP("retweets", 0), TP("mentions", 0)
HELD = cast(Any, object())
"""A held input (the announcement reads only its event time)."""


def pipeline(has_more: bool) -> InputFlow:
    """The announcing part of a worker, without Faust: its aligner and release times."""
    topology = Topology(Settings(partitions=1), load_model(), {}, "users-changelog")
    worker = InputFlow(topology, lambda partition, offset: has_more)
    worker.aligner.track([RETWEETS, MENTIONS])
    return worker


def test_a_partition_whose_next_event_waits_has_passed_everything_before_it() -> None:
    """A sparse `mentions` partition released its last event at t=100 and its next one, at
    t=50,000, waits in the aligner while `retweets` catches up. Announcing 100 left targets
    waiting for it until `merge_max_wait_s` made them stop (engagements then out of order)."""
    worker = pipeline(has_more=True)
    worker.released_ts[MENTIONS] = 100
    worker.aligner.add(MENTIONS, 7, 50_000, HELD)
    worker.released_ts[RETWEETS] = 400
    assert worker.input_progress() == {
        (2, 0): Progress(49_999, False),
        (1, 0): Progress(400, False),
    }


def test_a_partition_taken_over_announces_before_its_first_release() -> None:
    """A new owner's head event is the first after the committed offset: the old owner sent
    the engagements of everything before it."""
    worker = pipeline(has_more=False)
    worker.aligner.add(RETWEETS, 12, 7_000, HELD)
    assert worker.input_progress() == {(1, 0): Progress(6_999, False), (2, 0): Progress(None, True)}


def test_the_announced_time_never_goes_back_below_a_release() -> None:
    """After a seek the redelivered events are older than what was released before it."""
    worker = pipeline(has_more=True)
    worker.released_ts[RETWEETS] = 9_000
    worker.aligner.add(RETWEETS, 3, 5_000, HELD)
    assert worker.input_progress()[(1, 0)] == Progress(9_000, False)

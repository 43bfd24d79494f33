"""The input aligner releases events in event-time order across partitions (pipeline/aligner.py)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.aligner import EventTimeAligner


class Broker:
    """What the aligner may ask: the log-end offset of each partition."""

    def __init__(self, ends: dict[str, int]) -> None:
        self.ends = ends

    def has_more(self, partition: object, last_offset: int) -> bool:
        return self.ends[str(partition)] > last_offset + 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_still_on_the_broker_holds_the_others_back() -> None:
    broker = Broker({"a": 3, "b": 2})
    aligner: EventTimeAligner[str] = EventTimeAligner(broker.has_more, 1.0, Clock())
    aligner.track(["a", "b"])
    for offset, ts in enumerate((10, 20, 30)):
        aligner.add("a", offset, ts, f"a{ts}")
    assert aligner.release() == []  # b has two events on the broker, none seen yet
    aligner.add("b", 0, 15, "b15")
    assert aligner.release() == ["a10", "b15"]  # b is empty again and has one more
    aligner.add("b", 1, 25, "b25")
    assert aligner.release() == ["a20", "b25", "a30"]  # both read to the end
    assert len(aligner) == 0


def test_a_quiet_partition_stops_holding_the_others_after_max_wait() -> None:
    broker = Broker({"a": 1, "b": 5})
    clock = Clock()
    aligner: EventTimeAligner[str] = EventTimeAligner(broker.has_more, 1.0, clock)
    aligner.track(["a", "b"])
    aligner.add("a", 0, 10, "a10")
    assert aligner.release() == []
    clock.now = 0.9
    assert aligner.release() == []
    clock.now = 1.0
    assert aligner.release() == ["a10"]
    aligner.add("a", 1, 11, "a11")
    broker.ends["a"] = 2
    assert aligner.release() == ["a11"]  # b is ignored until it delivers
    aligner.add("b", 0, 5, "b5")
    aligner.add("a", 2, 12, "a12")
    broker.ends["a"] = 4
    # b delivered again, so it counts once more: b5 goes, and a12 waits for b's next event
    assert aligner.release() == ["b5"]
    clock.now = 2.5
    assert aligner.release() == ["a12"]


def test_forget_drops_what_is_held() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(lambda p, o: True, 1.0, Clock())
    aligner.track(["a", "b"])
    aligner.add("a", 0, 1, "x")
    assert aligner.forget() == ["x"]
    assert len(aligner) == 0 and aligner.release() == []


@given(st.lists(st.lists(st.integers(0, 1000), max_size=20), min_size=1, max_size=5), st.randoms())
def test_fully_fetched_partitions_merge_into_event_time_order(
    partitions: list[list[int]], rnd: random.Random
) -> None:
    """Whatever order whole fetches arrive in, each partition's own order is kept and the
    merge is by event time: the order an in-process replay of the sorted stream would see."""
    names = [f"p{i}" for i in range(len(partitions))]
    logs = {name: sorted(times) for name, times in zip(names, partitions, strict=True)}
    broker = Broker({name: len(log) for name, log in logs.items()})
    aligner: EventTimeAligner[tuple[int, str, int]] = EventTimeAligner(
        broker.has_more, 1.0, Clock()
    )
    aligner.track(names)
    cursors = dict.fromkeys(names, 0)
    released: list[tuple[int, str, int]] = []
    while any(cursors[n] < len(logs[n]) for n in names):
        name = rnd.choice([n for n in names if cursors[n] < len(logs[n])])
        chunk = rnd.randint(1, 5)
        for offset in range(cursors[name], min(cursors[name] + chunk, len(logs[name]))):
            ts = logs[name][offset]
            aligner.add(name, offset, ts, (ts, name, offset))
        cursors[name] = min(cursors[name] + chunk, len(logs[name]))
        released.extend(aligner.release())
    assert len(aligner) == 0
    expected = sorted((ts, name, offset) for name in names for offset, ts in enumerate(logs[name]))
    assert [r[0] for r in released] == [e[0] for e in expected]
    for name in names:
        assert [r[2] for r in released if r[1] == name] == list(range(len(logs[name])))


def test_a_refused_input_waits_behind_the_held_events_of_its_partition() -> None:
    broker = Broker({"a": 3, "b": 2})
    aligner: EventTimeAligner[str] = EventTimeAligner(broker.has_more, 1.0, Clock())
    aligner.track(["a", "b"])
    assert not aligner.follow("a", 0, "bad0")  # nothing held: it may go at once
    aligner.add("a", 1, 10, "a10")
    assert aligner.follow("a", 2, "bad2")
    assert aligner.release() == []  # b still has events on the broker
    aligner.add("b", 0, 5, "b5")
    aligner.add("b", 1, 50, "b50")
    assert aligner.release() == ["b5", "a10", "bad2", "b50"]


def test_a_seek_drops_what_is_held_and_keeps_the_partitions() -> None:
    """After a seek a partition with nothing more to deliver is idle, not unknown: dropping
    it left its last progress (not idle) standing at every target, which then waited for it
    for good. And none counts as caught up before its records come again."""
    more = {"a": False, "b": False}
    aligner: EventTimeAligner[str] = EventTimeAligner(lambda p, last: more[p], 1.0)
    aligner.track(["a", "b"])
    aligner.add("a", 5, 100, "a5")
    aligner.drop()
    assert len(aligner) == 0 and set(aligner.queues) == {"a", "b"}
    assert aligner.idle("b")
    more["a"] = True  # the broker holds "a"'s records again
    assert not aligner.idle("a")

"""The target side's merge of engagements across source partitions (pipeline/merge.py)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.merge import Progress, SourceMerge, all_sources, decode_progress, encode_progress
from pipeline.steps import Position, decode_engagements, encode_engagements
from scoring import Engagement

A, B = (0, 0), (0, 1)


def merge_of(*sources: tuple[int, int]) -> SourceMerge[str]:
    return SourceMerge(frozenset(sources))


def test_a_source_never_heard_of_holds_everything_back() -> None:
    merge = merge_of(A, B)
    merge.add(A, 100, "a100")
    merge.announce(A, 100, False)
    assert merge.release(10) == []
    assert merge.waiting_on() == [B]
    merge.announce(B, 50, False)
    assert merge.release(10) == []  # B may still send engagements between 50 and 100
    merge.announce(B, 100, False)
    assert merge.release(10) == ["a100"]


def test_an_idle_source_holds_nothing_back() -> None:
    merge = merge_of(A, B)
    merge.add(A, 100, "a100")
    merge.announce(B, None, True)
    assert merge.release(10) == ["a100"]


def test_a_source_that_ran_ahead_waits_for_the_one_behind() -> None:
    """The failover: A's worker ran days ahead while B's partitions were being taken over."""
    merge = merge_of(A, B)
    for ts in (100, 200, 300):
        merge.add(A, ts, f"a{ts}")
    merge.announce(A, 300, False)
    merge.announce(B, 150, False)
    assert merge.release(10) == ["a100"]
    merge.add(B, 160, "b160")
    merge.add(B, 250, "b250")
    merge.announce(B, 250, False)
    assert merge.release(10) == ["b160", "a200", "b250"]
    merge.announce(B, None, True)
    assert merge.release(10) == ["a300"]


def test_a_source_keeps_its_own_order_even_when_its_times_go_back() -> None:
    """The target's offset guard needs each source's engagements in offset order."""
    merge = merge_of(A)
    merge.add(A, 200, "first")
    merge.add(A, 100, "second (late in its own partition)")
    merge.announce(A, 200, False)
    assert merge.release(10) == ["first", "second (late in its own partition)"]


def test_progress_never_moves_back() -> None:
    """After a failover the new owner re-sends from the committed offset and announces older
    times; what the old owner announced still holds."""
    merge = merge_of(A, B)
    merge.announce(B, 500, False)
    merge.announce(B, 100, False)
    merge.add(A, 400, "a400")
    merge.announce(A, 400, False)
    assert merge.release(10) == ["a400"]


def test_release_takes_slices() -> None:
    merge = merge_of(A)
    for ts in range(10):
        merge.add(A, ts, str(ts))
    merge.announce(A, 10, False)
    assert merge.release(4) == ["0", "1", "2", "3"]
    assert merge.release(4) == ["4", "5", "6", "7"]
    assert merge.release(4) == ["8", "9"]
    assert merge.held == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**32), st.integers(1, 40))
def test_any_arrival_order_gives_the_event_time_order(
    sources: int, seed: int, per_source: int
) -> None:
    """However the sources' messages interleave and however far one runs ahead, what the
    merge releases is every engagement in event-time order, each source's in its own order."""
    rng = random.Random(seed)
    names = [(0, s) for s in range(sources)]
    streams = {
        name: sorted(rng.randrange(1000) for _ in range(rng.randrange(per_source + 1)))
        for name in names
    }
    merge: SourceMerge[tuple[int, tuple[int, int], int]] = SourceMerge(frozenset(names))
    cursors = dict.fromkeys(names, 0)
    out: list[tuple[int, tuple[int, int], int]] = []
    while any(cursors[n] < len(streams[n]) for n in names) or merge.held:
        live = [n for n in names if cursors[n] <= len(streams[n])]
        if not live:
            break
        name = rng.choice(live)
        stream, at = streams[name], cursors[name]
        step = rng.randrange(1, 4)
        for i in range(at, min(at + step, len(stream))):
            merge.add(name, stream[i], (stream[i], name, i))
        cursors[name] = min(at + step, len(stream))
        if cursors[name] == len(stream):
            merge.announce(name, stream[-1] if stream else None, True)
            cursors[name] += 1
        elif cursors[name]:
            merge.announce(name, stream[cursors[name] - 1], False)
        out.extend(merge.release(rng.randrange(1, 50)))
    out.extend(merge.release(10**9))
    assert sorted(out) == sorted(
        (ts, name, i) for name, stream in streams.items() for i, ts in enumerate(stream)
    )
    assert [ts for ts, _, _ in out] == sorted(ts for ts, _, _ in out)
    for name in names:
        assert [i for _, n, i in out if n == name] == list(range(len(streams[name])))


def test_all_sources_are_every_partition_of_every_input_topic() -> None:
    assert all_sources(3, 2) == {(t, p) for t in range(3) for p in range(2)}


def test_a_bundle_carries_engagements_and_progress() -> None:
    engagement = Engagement("e1", 0, 5, "a", "b", 1.0, 1.0, 1.0, 1.0, None, ("x",))
    routed = [(engagement, Position(1, 2, 3))]
    bundle = decode_engagements(encode_engagements(routed, [((1, 2), (5, False))]))  # type: ignore[list-item]
    assert bundle.engagements == routed
    assert bundle.progress == [((1, 2), Progress(5, False))]
    old = decode_engagements(b'[["e1",0,5,"a","b",1.0,1.0,1.0,1.0,null,["x"],1,2,3]]')
    assert old.engagements == routed and old.progress == []


def test_dropping_the_held_engagements_keeps_what_the_sources_said() -> None:
    """A seek redelivers the held engagements, but not the announcements before the committed
    offset: a quiet source says nothing more, so forgetting it would hold every engagement
    behind it for good (a two-worker run stalled with 25 messages unacknowledged)."""
    merge = merge_of(A, B)
    merge.announce(B, None, True)
    merge.add(A, 100, "a100")
    merge.drop_held()
    assert merge.held == 0 and merge.release(10) == []
    merge.add(A, 100, "a100 again")
    merge.announce(A, 100, False)
    assert merge.release(10) == ["a100 again"]


def test_a_source_silent_for_too_long_stops_holding_the_others_back() -> None:
    """Liveness: a source that never speaks again (its announcement lost) delays a partition
    by `max_wait_s`, not for good; once it speaks it holds the others back again."""
    now = [0.0]
    merge: SourceMerge[str] = SourceMerge(frozenset({A, B}), max_wait_s=30.0, clock=lambda: now[0])
    merge.announce(B, 50, False)
    merge.add(A, 100, "a100")
    merge.announce(A, 200, False)
    assert merge.release(10) == []
    now[0] = 29.0
    assert merge.release(10) == []
    now[0] = 30.0
    assert merge.release(10) == ["a100"]
    merge.announce(B, 60, False)  # B speaks: it counts again
    merge.add(A, 150, "a150")
    assert merge.release(10) == []


def test_an_idle_claim_holds_only_while_the_broker_has_nothing_past_it() -> None:
    """A source idle at offset 8 lets later engagements of other sources go only once the
    broker's end offset confirms it (the claim may predate an append to the source)."""
    merge: SourceMerge[str] = SourceMerge(frozenset({(0, 0), (0, 1)}))
    merge.announce((0, 0), 40, True, end=8)
    merge.announce((0, 1), 100, False)
    merge.add((0, 1), 60, "later")
    assert merge.idle_claims() == [(0, 0)]
    assert merge.release(10) == []  # unconfirmed: the source counts as having passed 40 only
    merge.confirm({(0, 0): 9})
    assert merge.release(10) == []  # one record appended past the claim
    merge.confirm({(0, 0): 8})
    assert merge.release(10) == ["later"]
    merge.announce((0, 0), None, True)  # a claim without an end: trusted as before
    assert merge.idle_claims() == [] and merge.is_idle((0, 0))


def test_progress_rows_of_older_workers_decode_without_an_end() -> None:
    rows = encode_progress([((1, 2), Progress(5, True, 7))])
    assert rows == [[1, 2, 5, True, 7]]
    assert decode_progress(rows) == [((1, 2), Progress(5, True, 7))]
    assert decode_progress([[1, 2, 5, True]]) == [((1, 2), Progress(5, True, None))]

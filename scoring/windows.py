"""Rolling event-time windows of engagements received: last 1 h, 24 h and 7 days, per kind.

Bounded buckets beside the decayed score: 5-minute buckets cover the hour, hourly buckets the
day and daily buckets the week, so a user holds at most 12 + 24 + 7 buckets. A window read at
time t counts the buckets whose span starts after ``t - window`` (bucket resolution).
"""

from __future__ import annotations

from scoring.events import ENGAGEMENT_KINDS
from scoring.model import DAY_MS, HOUR_MS

WINDOW_NAMES = ("1h", "24h", "7d")
_SPANS = (12, 24, 7)
"""Buckets per window, at each window's resolution."""


def _widths(minute_bucket_ms: int) -> tuple[int, int, int]:
    return (minute_bucket_ms, HOUR_MS, DAY_MS)


def new_windows() -> list[list[list[int]]]:
    """One ascending bucket list per resolution; a bucket is ``[index, n_kind0..n_kind3]``."""
    return [[], [], []]


def add_to_windows(
    windows: list[list[list[int]]], ts: int, kind: int, minute_bucket_ms: int
) -> None:
    """Counts one engagement in each resolution's bucket, dropping buckets out of reach."""
    slot = 1 + kind
    minutes, hours, days = windows
    index = ts // minute_bucket_ms
    if minutes and minutes[-1][0] == index and HOUR_MS % minute_bucket_ms == 0:
        # the newest minute bucket lies in the newest hour and day: one test for all three
        minutes[-1][slot] += 1
        hours[-1][slot] += 1
        days[-1][slot] += 1
        return
    minute_span, hour_span, day_span = _SPANS
    _count_in(minutes, index, slot, minute_span)
    _count_in(hours, ts // HOUR_MS, slot, hour_span)
    _count_in(days, ts // DAY_MS, slot, day_span)


def _count_in(buckets: list[list[int]], index: int, slot: int, span: int) -> None:
    """Counts in bucket `index`: the newest, a new newest (dropping what falls out of the
    window), or an older one for a late engagement."""
    if buckets:
        newest = buckets[-1][0]
        if index == newest:
            buckets[-1][slot] += 1
            return
        if index < newest:
            _count_late(buckets, index, slot, newest - span)
            return
    fresh = [index, 0, 0, 0, 0]
    fresh[slot] = 1
    buckets.append(fresh)
    oldest = index - span
    drop = 0
    while buckets[drop][0] <= oldest:
        drop += 1
    del buckets[:drop]


def _count_late(buckets: list[list[int]], index: int, slot: int, oldest: int) -> None:
    if index <= oldest:
        return  # already out of every window
    for i, bucket in enumerate(buckets):
        if bucket[0] == index:
            bucket[slot] += 1
            return
        if bucket[0] > index:
            fresh = [index, 0, 0, 0, 0]
            fresh[slot] = 1
            buckets.insert(i, fresh)
            return


def read_windows(
    windows: list[list[list[int]]], now_ms: int, minute_bucket_ms: int
) -> dict[str, dict[str, int]]:
    """Engagements received per kind in each window ending at `now_ms`."""
    widths = _widths(minute_bucket_ms)
    out: dict[str, dict[str, int]] = {}
    for res, name in enumerate(WINDOW_NAMES):
        current = now_ms // widths[res]
        sums = [0, 0, 0, 0]
        for bucket in windows[res] if windows else ():
            if current - _SPANS[res] < bucket[0] <= current:
                for k in range(4):
                    sums[k] += bucket[1 + k]
        out[name] = dict(zip(ENGAGEMENT_KINDS, sums, strict=True))
    return out

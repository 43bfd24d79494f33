"""Rolling event-time windows of engagements received: last 1 h, 24 h and 7 days, per kind.

Bounded buckets beside the decayed score: 5-minute buckets cover the hour, hourly buckets the
day and daily buckets the week, so a user holds at most 12 + 24 + 7 buckets. A window read at
time t counts the buckets whose span starts after ``t - window`` (bucket resolution).
"""

from __future__ import annotations

from scoring.model import DAY_MS, HOUR_MS, KINDS

WINDOW_NAMES = ("1h", "24h", "7d")
_SPANS = (12, 24, 7)
"""Buckets per window, at each window's resolution."""


def _widths(minute_bucket_ms: int) -> tuple[int, int, int]:
    return (minute_bucket_ms, HOUR_MS, DAY_MS)


def add_to_windows(buckets: list[list[int]], ts: int, kind: int, minute_bucket_ms: int) -> None:
    """Counts one engagement; each bucket is ``[resolution, index, n_kind0..n_kind3]``."""
    widths = _widths(minute_bucket_ms)
    created = False
    for res in range(3):
        index = ts // widths[res]
        for bucket in buckets:
            if bucket[0] == res and bucket[1] == index:
                bucket[2 + kind] += 1
                break
        else:
            fresh = [res, index, 0, 0, 0, 0]
            fresh[2 + kind] = 1
            buckets.append(fresh)
            created = True
    if not created:
        return
    newest = [max((b[1] for b in buckets if b[0] == res), default=0) for res in range(3)]
    buckets[:] = [b for b in buckets if b[1] > newest[b[0]] - _SPANS[b[0]]]


def read_windows(
    buckets: list[list[int]], now_ms: int, minute_bucket_ms: int
) -> dict[str, dict[str, int]]:
    """Engagements received per kind in each window ending at `now_ms`."""
    widths = _widths(minute_bucket_ms)
    out: dict[str, dict[str, int]] = {}
    for res, name in enumerate(WINDOW_NAMES):
        current = now_ms // widths[res]
        sums = [0, 0, 0, 0]
        for bucket in buckets:
            if bucket[0] == res and current - _SPANS[res] < bucket[1] <= current:
                for k in range(4):
                    sums[k] += bucket[2 + k]
        out[name] = dict(zip(KINDS, sums, strict=True))
    return out

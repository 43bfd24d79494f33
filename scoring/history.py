"""A user's score history (issue 15): daily closing scores and the latest score changes.

Klout showed a 90-day chart and Kred an itemised statement; here a score change is an event
nothing kept. `record_change` keeps, with the user's state, what those views need and no more:

- the *daily close*: the last score published on each event-time UTC day, for the last
  `HISTORY_DAYS` days up to the newest day a change was published (a day without a change
  closes where the day before did; a change with an older event time than the newest day seen,
  a late event, counts on that newest day);
- the last `HISTORY_CHANGES` published changes: when (event time, to the minute), the
  score, and the cause (`scoring.score.ScoreChange.cause`).

Scores are kept in hundredths of a point (scores are rounded to two decimals, so this is
exact) and times in minutes since the user's landmark, so a history is small integers. The
stored row (`history_to_row`) writes each list as differences from the entry before, packed
into a short string (`pack`: a character per five bits, most numbers in one to three): a
state grows by a few hundred bytes at most (tests/test_history.py measures it).

Only published scores are recorded: a score that decay moves by less than the change
threshold, or that is below the decay watch's floor (`scoring.watch`), keeps its last
published value here, as in the score-change stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scoring.errors import StateError
from scoring.model import DAY_MS

HISTORY_DAYS = 90
"""Daily closes kept: Klout's chart covered 90 days."""
HISTORY_CHANGES = 20
"""Score changes kept, newest last."""
CAUSES = ("engagement", "reciprocity", "topics", "audience", "decay")
"""`ScoreChange.cause` values, stored by their index here (append only: rows keep indexes)."""
CENTS = 100
"""Hundredths of a point per point: scores are published rounded to two decimals."""
MINUTE_MS = 60_000
PACK_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
"""`pack`'s digits: the first 32 end a number, the other 32 say more digits follow (64 JSON
characters that need no escaping, so a packed list costs a byte a digit)."""
PACK_BITS = 5
PACK_LAST = 1 << PACK_BITS


@dataclass(slots=True)
class ScoreHistory:
    """Daily closes and the latest changes of one user (see the module docstring)."""

    day: int
    """The newest day (days since the epoch) with a close: `closes[-1]` is that day's."""
    closes: list[int] = field(default_factory=list)
    """Closing scores in hundredths, one per consecutive day, oldest first."""
    previous: int | None = None
    """The score (hundredths) before the oldest kept change; None if it was the first ever."""
    changes: list[int] = field(default_factory=list)
    """Flattened (minutes since the landmark, score in hundredths, cause index), oldest first."""


def cents(score: float) -> int:
    """A published score (two decimals) in hundredths of a point, exactly."""
    return round(score * CENTS)


def record_change(
    state_history: ScoreHistory | None,
    landmark: int,
    now: int,
    score: float,
    previous: float | None,
    cause: str,
) -> ScoreHistory:
    """The history after a change to `score` at event time `now` was published."""
    value = cents(score)
    day = now // DAY_MS
    history = state_history
    if history is None:
        history = ScoreHistory(day, [value], None if previous is None else cents(previous))
    elif day > history.day:
        closes = history.closes
        gap = min(day - history.day - 1, HISTORY_DAYS)
        closes.extend([closes[-1]] * gap)
        closes.append(value)
        del closes[: max(0, len(closes) - HISTORY_DAYS)]
        history.day = day
    else:
        history.closes[-1] = value
    changes = history.changes
    changes.extend((max(0, (now - landmark) // MINUTE_MS), value, CAUSES.index(cause)))
    if len(changes) > 3 * HISTORY_CHANGES:
        history.previous = changes[1]
        del changes[:3]
    return history


def history_body(history: ScoreHistory | None, landmark: int) -> dict[str, object]:
    """The history as the API and the snapshot show it (schemas/api/history.json)."""
    if history is None:
        return {"daily": {"start": None, "scores": []}, "changes": []}
    first_day = history.day - len(history.closes) + 1
    changes: list[dict[str, object]] = []
    before = None if history.previous is None else history.previous / CENTS
    raw = history.changes
    for j in range(0, len(raw), 3):
        score = raw[j + 1] / CENTS
        changes.append(
            {
                "event_time": landmark + raw[j] * MINUTE_MS,
                "score": score,
                "previous": before,
                "cause": CAUSES[raw[j + 2]],
            }
        )
        before = score
    return {
        "daily": {"start": first_day * DAY_MS, "scores": [c / CENTS for c in history.closes]},
        "changes": changes,
    }


def _deltas(values: list[int], step: int = 1, start: int = 0) -> list[int]:
    """Each of `values[start::step]` as its difference from the one before (the first as is)."""
    out = list(values)
    for j in range(len(out) - 1, start + step - 1, -1):
        if (j - start) % step == 0:
            out[j] -= values[j - step]
    return out


def _sums(values: list[int], step: int = 1, start: int = 0) -> list[int]:
    """Inverse of `_deltas`."""
    out = list(values)
    for j in range(start + step, len(out), step):
        out[j] += out[j - step]
    return out


def pack(values: list[int]) -> str:
    """Integers as text, about a character per five bits: each zig-zagged (0, -1, 1, -2, ...
    become 0, 1, 2, 3, ...) and written low digits first in `PACK_ALPHABET`."""
    out: list[str] = []
    for n in values:
        z = n * 2 if n >= 0 else -n * 2 - 1
        while z >= PACK_LAST:
            out.append(PACK_ALPHABET[PACK_LAST + z % PACK_LAST])
            z //= PACK_LAST
        out.append(PACK_ALPHABET[z])
    return "".join(out)


def unpack(text: str) -> list[int]:
    """Inverse of `pack`; ValueError on a character it never writes or a cut-off number."""
    out: list[int] = []
    z, shift = 0, 0
    for char in text:
        digit = PACK_ALPHABET.index(char)
        z += (digit % PACK_LAST) << shift
        shift += PACK_BITS
        if digit < PACK_LAST:
            out.append(z // 2 if z % 2 == 0 else -(z + 1) // 2)
            z, shift = 0, 0
    if shift:
        raise ValueError("a packed number is cut off")
    return out


def history_to_row(history: ScoreHistory | None) -> list[Any] | None:
    """``[day, closes, previous, changes]``, the lists as `pack`ed differences (each close
    from the day before, each change's time and score from the change before)."""
    if history is None:
        return None
    changes = _deltas(_deltas(history.changes, 3, 0), 3, 1)
    return [history.day, pack(_deltas(history.closes)), history.previous, pack(changes)]


def history_from_row(row: Any) -> ScoreHistory | None:
    """Inverse of `history_to_row`; raises StateError on a malformed row."""
    if row is None:
        return None
    try:
        day, packed_closes, previous, packed_changes = row
        closes, changes = unpack(packed_closes), unpack(packed_changes)
        if len(changes) % 3 or not closes:
            raise ValueError("history lists of the wrong length")
        return ScoreHistory(day, _sums(closes), previous, _sums(_sums(changes, 3, 0), 3, 1))
    except (TypeError, ValueError) as exc:
        raise StateError(f"malformed score history: {exc}") from exc

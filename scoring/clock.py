"""The per-user decay clock with grace: event time minus the paused days of silences (§5).

A silence is a run of whole UTC days with no own action. Up to ``grace_days`` of a silence are
not charged to fast decay, counted from its first day; the allowance renews ``grace_renew_days``
after the pause that opened it began, so posting rarely is no way to stop decay. Several short
silences inside one period share the allowance (a skipped Sunday does not spend the holiday).

The clock is a pure function of the set of days with own actions, kept as merged runs, so a
query at any event time and engagements that arrive late are answered from state, not from
arrival order. Only silences older than ``max_action_runs`` runs are folded into totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_DAY = -(2**31)


@dataclass(slots=True)
class GraceClock:
    runs: list[int] = field(default_factory=list)
    """Flattened ``[first_day, last_day, ...]`` runs of days with own actions, ascending."""
    folded_paused: int = 0
    """Paused days of silences folded out of ``runs``."""
    period_start: int = NO_DAY
    """First day of the grace period in force after the folded silences."""
    budget: int = 0
    """Grace days left in that period after the folded silences."""
    cached_pauses: tuple[int, int, int, list[tuple[int, int]]] | None = field(
        default=None, compare=False, repr=False
    )
    """Derived, not stored: the last ``pauses`` answer after its arguments. Every read of the
    user's mass asks for it, and it only changes when a day is added or time passes."""

    def record_action(self, day: int, max_runs: int, grace_days: int, renew_days: int) -> bool:
        """Marks `day` as a day with an own action; True if that changed the clock."""
        runs = self.runs
        if runs and runs[-1] >= day - 1 and runs[-2] <= day:
            if runs[-1] >= day:
                return False
            runs[-1] = day
            self.cached_pauses = None
            return True
        changed = _insert_day(runs, day)
        while len(runs) > 2 * max_runs:
            self._fold_first_silence(grace_days, renew_days)
        self.cached_pauses = None
        return changed

    def _fold_first_silence(self, grace_days: int, renew_days: int) -> None:
        start, length = self.runs[1] + 1, self.runs[2] - self.runs[1] - 1
        paused, self.period_start, self.budget = _pause(
            start, length, self.period_start, self.budget, grace_days, renew_days
        )
        self.folded_paused += paused
        del self.runs[0:2]

    def pauses(self, until_day: int, grace_days: int, renew_days: int) -> list[tuple[int, int]]:
        """Paused day ranges ``(first, end_exclusive)`` among whole days before `until_day`."""
        cached = self.cached_pauses
        if (
            cached is not None
            and cached[0] == until_day
            and cached[1] == grace_days
            and cached[2] == renew_days
        ):
            return cached[3]
        out: list[tuple[int, int]] = []
        runs = self.runs
        period, budget = self.period_start, self.budget
        for i in range(1, len(runs), 2):
            start = runs[i] + 1
            end = runs[i + 1] if i + 1 < len(runs) else until_day
            end = min(end, until_day)
            if end <= start:
                continue
            paused, period, budget = _pause(
                start, end - start, period, budget, grace_days, renew_days
            )
            if paused:
                out.append((start, start + paused))
        self.cached_pauses = (until_day, grace_days, renew_days, out)
        return out

    def paused_before(self, day: int, pauses: list[tuple[int, int]]) -> int:
        """Paused days strictly before `day`, given ``pauses(until_day >= day)``."""
        total = self.folded_paused
        for first, end in pauses:
            if first >= day:
                break
            total += min(end, day) - first
        return total


def _pause(
    start: int, length: int, period: int, budget: int, grace_days: int, renew_days: int
) -> tuple[int, int, int]:
    """Grace spent on a silence of `length` days from `start`: (paused, period, budget)."""
    if start >= period + renew_days:
        period, budget = start, grace_days
    paused = min(budget, length)
    return paused, period, budget - paused


def _insert_day(runs: list[int], day: int) -> bool:
    """Adds `day` to the merged run list; False if it was already covered."""
    for i in range(0, len(runs), 2):
        first, last = runs[i], runs[i + 1]
        if first <= day <= last:
            return False
        if day == last + 1:
            runs[i + 1] = day
            if i + 2 < len(runs) and runs[i + 2] == day + 1:
                runs[i + 1] = runs[i + 3]
                del runs[i + 2 : i + 4]
            return True
        if day == first - 1:
            runs[i] = day
            return True
        if day < first:
            runs[i:i] = [day, day]
            return True
    runs.extend((day, day))
    return True

"""`influence calibrate --match PREVIOUS`: a new version's scale that keeps the previous
version's score distribution on a reference stream (no overnight fall, Klout-style).

Quantile mapping: on the reference stream, the user at rank r by the new version's raw
influence z gets the score level of the user at rank r by the previous version's score. The new
scale's knot at level ℓ is therefore the new z at the rank where the previous levels reach ℓ
(interpolated between ranks). Users keep their order under the new version; the distribution of
scores is the previous one; what moves a user is only a change of rank between versions.

The population is every user who received engagement, read at the end of the stream.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from pipeline.calibrate import KNOTS, read_model_text, with_knots
from pipeline.replay import replay
from scoring import Model, load_model, parse_model, read_mass
from scoring.scale import quantile_level, to_scale

BIG_MOVE = 5.0


def final_z(paths: list[str], model: Model, fmt: str = "auto") -> dict[str, float]:
    """z of every user who received engagement, at the end of the stream."""
    engine, _ = replay(paths, model, fmt=fmt)
    end = engine.now
    if end is None:
        return {}
    return {
        user: read_mass(state, end, model).z
        for user, state in engine.users()
        if state.received is not None
    }


def matched_knots(
    previous_levels: list[float], new_z: list[float], count: int = KNOTS
) -> list[float]:
    """Knots of the new scale: knot i is the new z where the previous levels reach i/(count-1)."""
    if not previous_levels or len(previous_levels) != len(new_z):
        raise ValueError("quantile mapping needs the same, non-empty population for both")
    levels = sorted(previous_levels)
    zs = sorted(new_z)
    last = len(zs) - 1
    knots = []
    for i in range(count):
        level = i / (count - 1)
        j = bisect_right(levels, level)  # previous levels at or below this one
        if j == 0:
            position = 0.0
        elif j > last:
            position = float(last)
        else:
            low, high = levels[j - 1], levels[j]
            position = j - 1 + ((level - low) / (high - low) if high > low else 0.0)
        below = int(position)
        above = min(below + 1, last)
        knots.append(zs[below] + (zs[above] - zs[below]) * (position - below))
    return knots


@dataclass(frozen=True, slots=True)
class Shift:
    """How far the new version's scores are from the previous one's, user by user."""

    median_abs: float
    median: float
    mean: float
    share_over_5: float

    @classmethod
    def of(cls, previous: list[float], new: list[float]) -> Shift:
        shifts = [b - a for a, b in zip(previous, new, strict=True)]
        return cls(
            median_abs=statistics.median(abs(s) for s in shifts),
            median=statistics.median(shifts),
            mean=statistics.fmean(shifts),
            share_over_5=sum(1 for s in shifts if abs(s) > BIG_MOVE) / len(shifts),
        )


@dataclass(frozen=True, slots=True)
class MatchResult:
    previous_version: str
    base_version: str
    new_version: str
    users: int
    before: Shift
    """The base model's own scale against the previous version."""
    after: Shift
    """The fitted scale against the previous version."""
    out: str

    def summary(self) -> str:
        b, a = self.before, self.after
        return (
            f"matched {self.new_version} ({self.out}) to {self.previous_version} on "
            f"{self.users:,} users: median |shift| {b.median_abs:.2f} → {a.median_abs:.2f} "
            f"points, median shift {b.median:+.2f} → {a.median:+.2f}, moving more than "
            f"{BIG_MOVE:g} points {100 * b.share_over_5:.1f} % → {100 * a.share_over_5:.1f} %"
        )

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def calibrate_matching(
    paths: list[str],
    base_model_path: str | None,
    previous_model_path: str,
    out: str,
    fmt: str = "auto",
    report_path: str | None = None,
) -> MatchResult:
    """Writes `out`: the base model with knots matched to the previous version's scores."""
    previous = load_model(previous_model_path)
    text = read_model_text(base_model_path)
    base = parse_model(text)
    previous_z = final_z(paths, previous, fmt)
    new_z = final_z(paths, base, fmt)
    users = sorted(previous_z.keys() & new_z.keys())
    if not users:
        raise ValueError("no user received engagement in the reference stream")
    previous_levels = [quantile_level(previous_z[u], previous.scale_knots) for u in users]
    knots = matched_knots(previous_levels, [new_z[u] for u in users])
    note = (
        f"quantile-matched to {previous.model_version} over {len(users)} engaged users of: "
        f"{' '.join(paths)}"
    )
    new_text = with_knots(text, knots, note)
    fitted = parse_model(new_text)
    Path(out).write_text(new_text, "utf-8")
    previous_scores = [to_scale(previous_z[u], previous.scale_knots) for u in users]
    result = MatchResult(
        previous_version=previous.model_version,
        base_version=base.model_version,
        new_version=fitted.model_version,
        users=len(users),
        before=Shift.of(previous_scores, [to_scale(new_z[u], base.scale_knots) for u in users]),
        after=Shift.of(previous_scores, [to_scale(new_z[u], fitted.scale_knots) for u in users]),
        out=out,
    )
    if report_path is not None:
        Path(report_path).write_bytes(result.to_json() + b"\n")
    return result

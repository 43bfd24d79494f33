"""How low can the median |shift| between v1 and v2 go? The measurements of docs/model.md
("Calibration floor"), reproducible:

    python3 docs/compare-v2/calibration_floor.py REFERENCE [--holdout OTHER] [--within T]

On REFERENCE (every user who received engagement, read at the end, as `influence calibrate
--match` reads them): the shift of v1's score to v2's under quantile matching with 101, 1,001
and 10,001 knots (the distribution-preserving maps), and under the monotone map of v2's z that
brings the most users within T points of their v1 score (a dynamic programme over scores at
0.01, users in z order, equal z sharing one value). That map is the best any calibration can
do for the median criterion on REFERENCE itself; with --holdout it is also applied, as the
step function it is, to another stream, beside the bundled v2 scale, to see whether it
generalises. `--within 0` leaves the DP out (its pointers take 20 kB per distinct z: too much
for Higgs).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.match import final_z, matched_knots
from scoring import Model, load_model
from scoring.scale import quantile_level, to_scale

GRID = np.round(np.arange(1.0, 100.0001, 0.01), 2)
"""Every score the scale can give (1-100, two decimals)."""


def both(path: str, v1: Model, v2: Model) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """v1 scores, v2 z and v1 levels of the users engaged under both versions."""
    z1, z2 = final_z([path], v1), final_z([path], v2)
    users = sorted(z1.keys() & z2.keys())
    s1 = np.array([to_scale(z1[u], v1.scale_knots) for u in users])
    levels = [quantile_level(z1[u], v1.scale_knots) for u in users]
    return s1, np.array([z2[u] for u in users]), levels


def line(name: str, shift: np.ndarray) -> str:
    a = np.abs(shift)
    return (
        f"{name}: median |shift| {np.median(a):.2f}, median shift {np.median(shift):+.2f}, "
        f"mean |shift| {np.mean(a):.2f}, > 5 points {100 * np.mean(a > 5):.1f} %"
    )


def most_within(s1: np.ndarray, z: np.ndarray, within: float) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing map of z bringing the most users within `within` of s1: (z of each
    step, its score), by DP with backtracking."""
    order = np.argsort(z, kind="stable")
    groups = [list(g) for _, g in itertools.groupby(order, key=lambda i: z[i])]
    best = np.zeros(len(GRID))
    pointers = []
    index = np.arange(len(GRID))
    for group in groups:
        running = np.maximum.accumulate(best)
        pointers.append(np.maximum.accumulate(np.where(best == running, index, 0)).astype(np.int16))
        hits = np.zeros(len(GRID) + 1)
        for i in group:
            hits[np.searchsorted(GRID, s1[i] - within - 1e-9)] += 1
            hits[np.searchsorted(GRID, s1[i] + within + 1e-9)] -= 1
        best = running + np.cumsum(hits)[:-1]
    at = int(np.argmax(best))
    values = np.zeros(len(groups))
    for k in range(len(groups) - 1, -1, -1):
        values[k] = GRID[at]
        at = int(pointers[k][at])
    return np.array([z[g[0]] for g in groups]), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("--holdout")
    parser.add_argument(
        "--within", type=float, default=1.9, help="0: no DP (a large stream, e.g. Higgs)"
    )
    args = parser.parse_args()
    v1, v2 = load_model("v1"), load_model("v2")
    s1, z, levels = both(args.reference, v1, v2)
    ranks = [np.argsort(np.argsort(x, kind="stable"), kind="stable") for x in (s1, z)]
    spearman = np.corrcoef(ranks[0], ranks[1])[0, 1]
    print(f"{args.reference}: {len(s1):,} users, Spearman of v1's score and v2's z {spearman:.3f}")
    print(line("bundled v2 scale", np.array([to_scale(x, v2.scale_knots) for x in z]) - s1))
    for count in (101, 1001, 10001):
        knots = matched_knots(levels, list(z), count)
        print(line(f"matched, {count} knots", np.array([to_scale(x, knots) for x in z]) - s1))
    if args.within <= 0:
        return
    steps, values = most_within(s1, z, args.within)
    fitted = values[np.searchsorted(steps, z, side="right") - 1]
    print(line(f"most users within {args.within} (any monotone map)", fitted - s1))
    share = np.mean(np.abs(fitted - s1) <= args.within + 1e-9)
    print(f"  at most {100 * share:.1f} % of users can be within {args.within} points")
    print(f"  that map takes {len(set(values))} distinct scores; deciles v1 / map:")
    for scores in (s1, fitted):
        print("   ", [round(float(q), 1) for q in statistics.quantiles(scores, n=10)])
    if args.holdout:
        h1, hz, _ = both(args.holdout, v1, v2)
        step = values[np.clip(np.searchsorted(steps, hz, side="right") - 1, 0, None)]
        print(f"{args.holdout}: {len(h1):,} users")
        print(line("  that map", step - h1))
        print(line("  bundled v2 scale", np.array([to_scale(x, v2.scale_knots) for x in hz]) - h1))


if __name__ == "__main__":
    main()

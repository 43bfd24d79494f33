"""Float sums in `scoring/` add left to right on every supported Python, as the compiled core does.

Python 3.12 made the built-in ``sum()`` of floats compensated; the Rust twin adds
``0.0 + a + b + ...``. These tests pin the values where the two disagree, so a float ``sum()``
brought back into `scoring/` fails here on 3.12 and 3.13 (tests/test_pyversions.py runs this
file there), and the source check below fails on any Python.
"""

from __future__ import annotations

import ast
import functools
import operator
import sys
from pathlib import Path

from scoring.acting import _evict_out_pairs
from scoring.fold import left_sum
from scoring.model import Model
from scoring.state import ActingState
from scoring.topics import TopicStats, topic_evidence

SCORING = Path(__file__).resolve().parents[1] / "scoring"

TINY = 1e-16
"""Below half an ulp of 1.0 (1.1e-16): ``1.0 + TINY`` rounds back to 1.0, so a left fold of
``[1.0, TINY, TINY, ...]`` stays 1.0 while a compensated sum keeps the TINYs."""
LOPSIDED = [1.0, TINY, TINY, TINY, TINY]
CANCELLING = [1e100, 1.0, -1e100]
"""A left fold loses the 1.0 inside the huge partial sum: 0.0; compensated summation: 1.0."""

INT_SUMS = {
    "received.counts",
    "(1 for j in range(1, len(history), 3) if history[j] > 0.0)",  # days with engagement
    "(1 for bucket in received.buckets if bucket.raw > 0.0)",
}
"""The arguments of the `sum()` calls `scoring/` may keep: sums of ints, exact in any order."""


def test_left_sum_is_a_left_fold_from_zero() -> None:
    for values in (LOPSIDED, CANCELLING, [0.1] * 10, [0.1, 0.2, 0.3]):
        assert left_sum(values) == functools.reduce(operator.add, values, 0.0)
    assert left_sum(LOPSIDED) == 1.0
    assert left_sum(CANCELLING) == 0.0
    assert left_sum(iter([0.5, 0.25])) == 0.75  # any iterable, consumed once
    assert left_sum([]) == 0.0 and isinstance(left_sum([]), float)
    assert str(left_sum([-0.0])) == "0.0"  # starts at +0.0, like sum() and the Rust folds


def test_builtin_sum_is_a_left_fold_only_before_3_12() -> None:
    """Why `left_sum` exists: on 3.12+ ``sum()`` gives other bits for the same floats."""
    if sys.version_info >= (3, 12):
        assert sum(LOPSIDED) == 1.0 + 4 * TINY != left_sum(LOPSIDED)
        assert sum(CANCELLING) == 1.0 != left_sum(CANCELLING)
    else:
        assert sum(LOPSIDED) == left_sum(LOPSIDED)
        assert sum(CANCELLING) == left_sum(CANCELLING)


def test_top_tweet_share_adds_tweet_masses_left_to_right(model: Model) -> None:
    """One tweet of mass 1.0 and four of 1e-16: the Rust core's loop gives a total of exactly
    1.0, so the top tweet's share is exactly 1.0 (0.9999999999999996 with a compensated sum)."""
    tweets = {f"t{i}": mass for i, mass in enumerate(LOPSIDED)}
    stats = TopicStats(own_tweets=1, days=[0], mass=1.0, count=5, tweets=tweets)
    (evidence,) = topic_evidence({"higgs": stats}, 1.0, 5, model)
    assert evidence.top_tweet_share == 1.0


def test_out_pair_eviction_ranks_by_left_folded_counts() -> None:
    """Pair "b" counts 1.0 + 1e-16 + 1e-16: left to right that is 1.0, a tie with "a" that the
    ids break, so "a" stays; a compensated sum would rank "b" first and keep it instead."""
    acting = ActingState(out_pairs={"b": [1.0, TINY, TINY], "a": [1.0, 0.0, 0.0]})
    _evict_out_pairs(acting, 1)
    assert list(acting.out_pairs) == ["a"]


def test_scoring_has_no_float_sum() -> None:
    """Every built-in `sum()` in scoring/ is a sum of ints; floats go through `left_sum`."""
    found = []
    for path in sorted(SCORING.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                argument = ast.unparse(node.args[0]) if node.args else ""
                if name == "fsum" or (name == "sum" and argument not in INT_SUMS):
                    found.append(f"{path.name}:{node.lineno}: {name}({argument})")
    assert not found, f"float sums outside scoring.fold.left_sum: {found}"

"""The frozen scale's knots (scoring/scale.py `fit_knots`), fitted by `influence calibrate`.

`fit_knots` runs only when a model version is calibrated, never during scoring, so the parity
and rule tests never reach it; these pin its quantiles by hand-computed values.
"""

from __future__ import annotations

import pytest

from scoring.scale import fit_knots, quantile_level, to_scale


def test_knots_are_the_quantiles_at_evenly_spaced_levels() -> None:
    assert fit_knots([float(v) for v in range(11)], 11) == [float(v) for v in range(11)]
    assert fit_knots([0.0, 4.0, 10.0], 3) == [0.0, 4.0, 10.0]


def test_knots_interpolate_linearly_between_neighbours() -> None:
    # levels 0, 1/4, 1/2, 3/4, 1 over two values: positions 0, 0.25, 0.5, 0.75, 1
    assert fit_knots([0.0, 10.0], 5) == [0.0, 2.5, 5.0, 7.5, 10.0]
    # three values, four knots: positions 0, 2/3, 4/3, 2 between 1, 2 and 4
    assert fit_knots([1.0, 2.0, 4.0], 4) == pytest.approx([1.0, 1 + 2 / 3, 2 + 2 / 3, 4.0])


def test_knots_ignore_input_order_and_span_the_population() -> None:
    values = [9.0, 1.0, 5.0, 3.0, 7.0]
    knots = fit_knots(values)
    assert len(knots) == 1001
    assert knots[0] == 1.0 and knots[-1] == 9.0 and knots[500] == 5.0
    assert knots == sorted(knots)
    assert fit_knots(values, 5) == [1.0, 3.0, 5.0, 7.0, 9.0]


def test_one_value_gives_flat_knots_and_none_is_an_error() -> None:
    assert fit_knots([2.5], 4) == [2.5, 2.5, 2.5, 2.5]
    with pytest.raises(ValueError, match="empty"):
        fit_knots([])


def test_fitted_knots_map_the_population_onto_the_whole_scale() -> None:
    values = [float(v) for v in range(101)]
    knots = fit_knots(values, 11)
    assert to_scale(values[0], knots) == 1.0
    assert to_scale(values[-1], knots) == 100.0
    assert quantile_level(50.0, knots) == 0.5

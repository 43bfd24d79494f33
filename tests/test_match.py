"""`influence calibrate --match`: a changed model keeps the previous version's scores.

Checked from snapshots of independent replays, not from the command's own report."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.match import matched_knots
from pipeline.synthetic import GeneratorConfig, generate, write_jsonl
from scoring import Model, load_model
from scoring.scale import quantile_level
from tests.test_compare import V1, changed_model, edited_model, snapshot

STREAM = GeneratorConfig(users=600, days=30, seed=5)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("match") / "stream.jsonl"
    with path.open("wb") as out:
        write_jsonl(generate(STREAM), out)
    return path


def shifts(
    before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]
) -> list[float]:
    engaged = [u for u, r in before.items() if sum(r["counts"].values()) > 0]  # type: ignore[attr-defined]
    return [float(after[u]["score"]) - float(before[u]["score"]) for u in engaged]  # type: ignore[arg-type]


def median_abs(values: list[float]) -> float:
    return statistics.median(abs(v) for v in values)


def check_match(tmp: Path, inputs: list[str], changed: Path) -> tuple[float, float]:
    """(median |shift| without --match, with it), both measured on the whole population."""
    matched = tmp / "matched.toml"
    report = tmp / "match.json"
    args = ["calibrate", *inputs, "--model", str(changed), "--match", str(V1)]
    assert main([*args, "--out", str(matched), "--report", str(report)]) == 0
    previous = snapshot(tmp, V1, inputs)
    unmatched = median_abs(shifts(previous, snapshot(tmp, changed, inputs)))
    after = shifts(previous, snapshot(tmp, matched, inputs))
    result = orjson.loads(report.read_bytes())
    assert result["after"]["median_abs"] == pytest.approx(median_abs(after), abs=1e-9)
    assert result["before"]["median_abs"] == pytest.approx(unmatched, abs=1e-9)
    new = load_model(matched)
    assert new.model_version == result["new_version"] != load_model(changed).model_version

    # Only the scale moved: every other parameter is the changed model's.
    def parameters(m: Model) -> Model:
        return replace(m, scale_knots=(), model_version="")

    assert parameters(new) == parameters(load_model(changed)) != parameters(load_model(V1))
    assert new.scale_knots != load_model(changed).scale_knots
    return unmatched, median_abs(after)


def test_matching_keeps_the_median_user_within_a_point(stream: Path, tmp_path: Path) -> None:
    unmatched, matched = check_match(tmp_path, [str(stream)], changed_model(tmp_path, 20.0))
    assert matched < 1.0
    assert unmatched > 1.0 and unmatched > 2 * matched


def test_matched_knots_map_each_rank_to_the_previous_level_at_that_rank() -> None:
    previous = [0.0, 0.0, 0.1, 0.4, 0.5, 0.9, 1.0]
    new_z = [3.0, 1.0, 2.0, 5.0, 4.0, 7.0, 6.0]
    knots = matched_knots(previous, new_z, count=11)
    assert knots == sorted(knots)
    mapped = sorted(quantile_level(z, knots) for z in new_z)
    assert mapped == pytest.approx(sorted(previous), abs=1e-9)
    with pytest.raises(ValueError):
        matched_knots([0.5], [1.0, 2.0])


@pytest.mark.slow
def test_matching_on_the_higgs_stream(higgs: Path, tmp_path: Path) -> None:
    # Over one week a half-life barely matters (the slow floor holds); weights do.
    changed = edited_model(tmp_path, "retweet = 1.0", "retweet = 2.0")
    unmatched, matched = check_match(tmp_path, [str(higgs)], changed)
    assert matched < 1.0
    assert unmatched > 1.0 and unmatched > 2 * matched

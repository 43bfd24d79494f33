"""`influence compare`: the report's numbers against values computed here from two replays'
snapshots, with a rank correlation written independently of the one under test."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.synthetic import GeneratorConfig, generate, write_jsonl

V1 = Path(__file__).resolve().parents[1] / "scoring" / "models" / "v1.toml"
STREAM = GeneratorConfig(users=250, days=20, seed=11, scenarios=("ring",))


def changed_model(tmp: Path, half_life_days: float) -> Path:
    """v1 with another fast half-life (a different model version)."""
    return edited_model(
        tmp, "fast_half_life_days = 45.0", f"fast_half_life_days = {half_life_days}"
    )


def edited_model(tmp: Path, old: str, new: str) -> Path:
    """v1 with one line replaced."""
    text = V1.read_text("utf-8")
    assert text.count(old) == 1
    path = tmp / f"{new.split()[0]}-{new.split()[-1]}.toml"
    path.write_text(text.replace(old, new), "utf-8")
    return path


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "stream.jsonl"
    with path.open("wb") as out:
        write_jsonl(generate(STREAM), out)
    return path


def snapshot(tmp: Path, model: Path, inputs: list[str]) -> dict[str, dict[str, object]]:
    out = tmp / f"snapshot-{model.stem}.jsonl"
    assert main(["replay", *inputs, "--model", str(model), "--snapshot-out", str(out)]) == 0
    return {r["user"]: r for r in map(orjson.loads, out.read_bytes().splitlines())}


def ranks(values: list[float]) -> list[float]:
    """Average 1-based ranks, ties sharing their mean position (plain Python)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def rank_correlation(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb)


def check_report(tmp: Path, inputs: list[str], model_b: Path) -> dict[str, object]:
    out = tmp / "report"
    assert (
        main(["compare", *inputs, "--model", str(V1), "--model", str(model_b), "--out", str(out)])
        == 0
    )
    report = orjson.loads((out / "report.json").read_bytes())
    markdown = (out / "report.md").read_text("utf-8")
    for name in ("scores.png", "shift.png", "scatter.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({name})" in markdown

    a_rows, b_rows = snapshot(tmp, V1, inputs), snapshot(tmp, model_b, inputs)
    engaged = sorted(u for u, r in a_rows.items() if sum(r["counts"].values()) > 0)  # type: ignore[attr-defined]
    a = [float(a_rows[u]["score"]) for u in engaged]  # type: ignore[arg-type]
    b = [float(b_rows[u]["score"]) for u in engaged]  # type: ignore[arg-type]
    shifts = [y - x for x, y in zip(a, b, strict=True)]

    assert report["users"] == len(engaged)
    assert report["spearman"] == pytest.approx(rank_correlation(a, b), abs=1e-9)
    moved = sum(1 for s in shifts if abs(s) > 5.0) / len(shifts)
    assert report["share_moved_over_5"] == pytest.approx(moved, abs=1e-12)
    assert report["shift"]["median"] == pytest.approx(statistics.median(shifts), abs=1e-9)
    assert report["shift"]["median_abs"] == pytest.approx(
        statistics.median(abs(s) for s in shifts), abs=1e-9
    )
    assert report["distribution_a"]["p50"] == pytest.approx(statistics.median(a), abs=1e-9)
    assert report["distribution_b"]["mean"] == pytest.approx(statistics.fmean(b), abs=1e-9)
    down = report["top_down"]
    assert down and down[0]["shift"] == pytest.approx(min(shifts), abs=1e-9)
    assert down[0]["score_a"] == a_rows[down[0]["user"]]["score"]
    assert down[0]["reasons_a"] and down[0]["reasons_b"]
    assert f"{report['spearman']:.4f}" in markdown and down[0]["user"] in markdown
    topics_a = sum(1 for u in engaged if a_rows[u]["topics"])
    assert report["topics"]["users_with_topics_a"] == topics_a
    return report


def test_report_numbers_match_two_independent_replays(stream: Path, tmp_path: Path) -> None:
    report = check_report(tmp_path, [str(stream)], changed_model(tmp_path, 10.0))
    # A 10-day half-life over 20 days lowers nearly everyone: the report must show it.
    assert report["shift"]["median"] < -1.0
    assert report["topics"]["users_with_topics_a"] > 0


def test_the_same_model_twice_shows_no_shift(stream: Path, tmp_path: Path) -> None:
    out = tmp_path / "same"
    assert (
        main(["compare", str(stream), "--model", str(V1), "--model", str(V1), "--out", str(out)])
        == 0
    )
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["spearman"] == pytest.approx(1.0)
    assert report["shift"]["median_abs"] == 0.0 and report["share_moved_over_5"] == 0.0
    assert report["top_up"] == [] and report["top_down"] == []
    assert report["topics"]["users_topic_set_changed"] == 0


@pytest.mark.slow
def test_higgs_report_numbers_match_two_independent_replays(higgs: Path, tmp_path: Path) -> None:
    report = check_report(tmp_path, [str(higgs)], changed_model(tmp_path, 20.0))
    assert report["users"] > 50_000  # users of the Higgs week who received engagement

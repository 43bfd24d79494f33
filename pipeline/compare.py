"""`influence compare`: score one stream with two model versions and report what would change.

Both versions run in the embedded engine over the same input. The population is every user who
received engagement; scores are read at the end of the stream (or `--as-of`). The report
(`report.md`, `report.json` and PNG plots in the output directory) shows each version's score
distribution, the per-user shift B − A, the Spearman rank correlation between versions, the
share of users moving more than `BIG_MOVE` points, the top movers each way with both versions'
explanations, and how published topics change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from pipeline.native_engine import AnyEngine
from pipeline.replay import replay
from scoring import Model, explain, load_model, read_mass, score_of
from scoring.score import topic_scores

BIG_MOVE = 5.0
"""Points of shift that count as a big move (the issue's "more than 5 points")."""
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
SHIFT_BINS = 60
SCORE_BIN_POINTS = 2.0
TOPIC_MOVES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class UserScores:
    """One user's score and published topics under each version."""

    user: str
    a: float
    b: float
    topics_a: dict[str, float]
    topics_b: dict[str, float]

    @property
    def shift(self) -> float:
        return self.b - self.a


def population(engine_a: AnyEngine, engine_b: AnyEngine, at: int) -> list[UserScores]:
    """Every user who received engagement under either version, in user-id order."""
    users = sorted(
        u
        for u in engine_a.states.keys() | engine_b.states.keys()
        if _received(engine_a, u) or _received(engine_b, u)
    )
    out = []
    for user in users:
        a, topics_a = _score(engine_a, user, at)
        b, topics_b = _score(engine_b, user, at)
        out.append(UserScores(user, a, b, topics_a, topics_b))
    return out


def _received(engine: AnyEngine, user: str) -> bool:
    state = engine.states.get(user)
    return state is not None and state.received is not None


def _score(engine: AnyEngine, user: str, at: int) -> tuple[float, dict[str, float]]:
    state = engine.states.get(user)
    model = engine.model
    if state is None:
        return 1.0, {}
    mass = read_mass(state, at, model)
    return score_of(mass, model), {t.topic: t.score for t in topic_scores(state, mass, model)}


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of their positions (as Spearman's rho needs)."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    order = np.argsort(array, kind="mergesort")
    ordered = array[order]
    ranks = np.empty(len(array), dtype=float)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(array)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return [float(r) for r in ranks]


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks."""
    import numpy as np

    if len(a) < 2:
        return math.nan
    ra, rb = np.asarray(average_ranks(a)), np.asarray(average_ranks(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else math.nan


@dataclass(frozen=True, slots=True)
class Mover:
    user: str
    score_a: float
    score_b: float
    shift: float
    reasons_a: list[dict[str, object]]
    reasons_b: list[dict[str, object]]
    why: dict[str, dict[str, float]]
    """Per version: mass z, effective mass, fast and slow mass, grace days used."""


@dataclass(slots=True)
class CompareReport:
    model_a: str
    model_b: str
    inputs: list[str]
    at: int
    users: int
    distribution_a: dict[str, float]
    distribution_b: dict[str, float]
    shift: dict[str, float]
    spearman: float
    share_moved_over_5: float
    share_up_over_5: float
    share_down_over_5: float
    topics: dict[str, object]
    top_up: list[Mover] = field(default_factory=list)
    top_down: list[Mover] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"compared {self.model_a} → {self.model_b} on {self.users:,} users: median shift "
            f"{self.shift['median']:+.2f}, median |shift| {self.shift['median_abs']:.2f}, "
            f"Spearman {self.spearman:.4f}, {100 * self.share_moved_over_5:.1f} % moved more "
            f"than {BIG_MOVE:g} points"
        )

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def distribution(scores: list[float]) -> dict[str, float]:
    import numpy as np

    array = np.asarray(scores, dtype=float)
    out = {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max())}
    for q in QUANTILES:
        out[f"p{round(q * 100):02d}"] = float(np.quantile(array, q))
    return out


def shift_stats(shifts: list[float]) -> dict[str, float]:
    import numpy as np

    array = np.asarray(shifts, dtype=float)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "median_abs": float(np.median(np.abs(array))),
        "p05": float(np.quantile(array, 0.05)),
        "p95": float(np.quantile(array, 0.95)),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def topic_changes(rows: list[UserScores]) -> dict[str, object]:
    gained = sum(len(r.topics_b.keys() - r.topics_a.keys()) for r in rows)
    lost = sum(len(r.topics_a.keys() - r.topics_b.keys()) for r in rows)
    moves = sorted(
        (
            (abs(r.topics_b.get(t, 0.0) - r.topics_a.get(t, 0.0)), r.user, t)
            for r in rows
            for t in r.topics_a.keys() | r.topics_b.keys()
        ),
        key=lambda m: (-m[0], m[1], m[2]),
    )
    by_user = {r.user: r for r in rows}
    return {
        "users_with_topics_a": sum(1 for r in rows if r.topics_a),
        "users_with_topics_b": sum(1 for r in rows if r.topics_b),
        "users_topic_set_changed": sum(1 for r in rows if r.topics_a.keys() != r.topics_b.keys()),
        "topics_gained": gained,
        "topics_lost": lost,
        "largest_topic_moves": [
            {
                "user": user,
                "topic": topic,
                "a": by_user[user].topics_a.get(topic),
                "b": by_user[user].topics_b.get(topic),
            }
            for _, user, topic in moves[:TOPIC_MOVES_SHOWN]
        ],
    }


def mover(row: UserScores, engine_a: AnyEngine, engine_b: AnyEngine, at: int) -> Mover:
    reasons: list[list[dict[str, object]]] = []
    why: dict[str, dict[str, float]] = {}
    for name, engine in (("a", engine_a), ("b", engine_b)):
        state = engine.states[row.user]
        explanation = explain(state, at, engine.model)
        reasons.append([{"code": r.code, "points": r.points} for r in explanation.reasons])
        why[name] = {
            "z": explanation.mass,
            "effective_mass": explanation.effective_mass,
            **explanation.decay,
        }
    return Mover(row.user, row.a, row.b, row.shift, reasons[0], reasons[1], why)


def build_report(
    engine_a: AnyEngine, engine_b: AnyEngine, inputs: list[str], at: int, top: int
) -> tuple[CompareReport, list[UserScores]]:
    rows = population(engine_a, engine_b, at)
    if not rows:
        raise ValueError("no user received any engagement: nothing to compare")
    a = [r.a for r in rows]
    b = [r.b for r in rows]
    shifts = [r.shift for r in rows]
    count = len(rows)
    ranked = sorted(rows, key=lambda r: (-r.shift, r.user))
    report = CompareReport(
        model_a=engine_a.model.model_version,
        model_b=engine_b.model.model_version,
        inputs=list(inputs),
        at=at,
        users=count,
        distribution_a=distribution(a),
        distribution_b=distribution(b),
        shift=shift_stats(shifts),
        spearman=spearman(a, b),
        share_moved_over_5=sum(1 for s in shifts if abs(s) > BIG_MOVE) / count,
        share_up_over_5=sum(1 for s in shifts if s > BIG_MOVE) / count,
        share_down_over_5=sum(1 for s in shifts if s < -BIG_MOVE) / count,
        topics=topic_changes(rows),
        top_up=[mover(r, engine_a, engine_b, at) for r in ranked[:top] if r.shift > 0],
        top_down=[mover(r, engine_a, engine_b, at) for r in reversed(ranked[-top:]) if r.shift < 0],
    )
    return report, rows


def plot(report: CompareReport, rows: list[UserScores], out: Path) -> dict[str, str]:
    """The PNG plots; returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files: dict[str, str] = {}
    a = np.asarray([r.a for r in rows])
    b = np.asarray([r.b for r in rows])

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.arange(1.0, 100.0 + SCORE_BIN_POINTS, SCORE_BIN_POINTS).tolist()
    ax.hist(a, bins=bins, alpha=0.55, label=f"A {report.model_a}")
    ax.hist(b, bins=bins, alpha=0.55, label=f"B {report.model_b}")
    ax.set(xlabel="score (1–100)", ylabel="users", title="Score distribution by version")
    ax.legend()
    files["distribution"] = "scores.png"
    fig.savefig(out / files["distribution"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    shifts = b - a
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(shifts, bins=SHIFT_BINS)
    for edge in (-BIG_MOVE, BIG_MOVE):
        ax.axvline(edge, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="shift B − A (points)", ylabel="users", title="Per-user shift")
    files["shift"] = "shift.png"
    fig.savefig(out / files["shift"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(a, b, s=3, alpha=0.3)
    ax.plot([1, 100], [1, 100], color="grey", linewidth=1)
    ax.set(xlabel="score A", ylabel="score B", title=f"Spearman {report.spearman:.4f}")
    files["scatter"] = "scatter.png"
    fig.savefig(out / files["scatter"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return files


def markdown(report: CompareReport) -> str:
    def row(name: str, d: dict[str, float]) -> str:
        cells = " | ".join(f"{d[k]:.2f}" for k in ("mean", *_quantile_keys()))
        return f"| {name} | {cells} |"

    s = report.shift
    t = report.topics
    lines = [
        f"# Model comparison: {report.model_a} → {report.model_b}",
        "",
        f"Inputs: {', '.join(report.inputs)} · scores read at event time {report.at} · "
        f"{report.users:,} users who received engagement.",
        "",
        "## Summary",
        "",
        f"- Spearman rank correlation between versions: **{report.spearman:.4f}**",
        f"- Users moving more than {BIG_MOVE:g} points: **{100 * report.share_moved_over_5:.2f} %**"
        f" (up {100 * report.share_up_over_5:.2f} %, down {100 * report.share_down_over_5:.2f} %)",
        f"- Shift B − A: median {s['median']:+.2f}, median |shift| {s['median_abs']:.2f}, "
        f"mean {s['mean']:+.2f}, 5th–95th percentile {s['p05']:+.2f} … {s['p95']:+.2f}",
        "",
        "## Score distributions",
        "",
        "| version | mean | " + " | ".join(_quantile_keys()) + " |",
        "|---|" + "---|" * (1 + len(QUANTILES)),
        row(f"A {report.model_a}", report.distribution_a),
        row(f"B {report.model_b}", report.distribution_b),
        "",
        f"![score distributions]({report.plots['distribution']})",
        "",
        "## Per-user shift",
        "",
        f"![shift histogram]({report.plots['shift']})",
        "",
        f"![A against B]({report.plots['scatter']})",
        "",
    ]
    for title, movers in (("Top movers up", report.top_up), ("Top movers down", report.top_down)):
        lines += [f"## {title}", "", "| user | A | B | shift | reasons A | reasons B |"]
        lines.append("|---|---|---|---|---|---|")
        for m in movers:
            lines.append(
                f"| {m.user} | {m.score_a:.2f} | {m.score_b:.2f} | {m.shift:+.2f} | "
                f"{_reasons(m.reasons_a)} | {_reasons(m.reasons_b)} |"
            )
        lines.append("")
    lines += [
        "## Topic changes",
        "",
        f"- Users with published topics: A {t['users_with_topics_a']}, "
        f"B {t['users_with_topics_b']}; users whose topic set changed: "
        f"{t['users_topic_set_changed']}",
        f"- Topics gained {t['topics_gained']}, lost {t['topics_lost']}",
        "",
    ]
    moves = t["largest_topic_moves"]
    assert isinstance(moves, list)
    if moves:
        lines += ["| user | topic | A | B |", "|---|---|---|---|"]
        for move in moves:
            lines.append(
                f"| {move['user']} | {move['topic']} | {_maybe(move['a'])} | {_maybe(move['b'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def _quantile_keys() -> list[str]:
    return [f"p{round(q * 100):02d}" for q in QUANTILES]


def _reasons(reasons: list[dict[str, object]]) -> str:
    return ", ".join(f"{r['code']} {float(r['points']):+.1f}" for r in reasons[:4])  # type: ignore[arg-type]


def _maybe(value: object) -> str:
    return "—" if value is None else f"{float(value):.2f}"  # type: ignore[arg-type]


def run_compare(
    inputs: list[str],
    model_a_path: str,
    model_b_path: str,
    out_dir: str,
    fmt: str = "auto",
    as_of: int | None = None,
    top: int = 10,
) -> CompareReport:
    """Replays `inputs` with both models and writes report.md, report.json and the plots."""
    model_a: Model = load_model(model_a_path)
    model_b: Model = load_model(model_b_path)
    engine_a, _ = replay(inputs, model_a, fmt=fmt)
    engine_b, _ = replay(inputs, model_b, fmt=fmt)
    at = as_of if as_of is not None else engine_a.now
    if at is None:
        raise ValueError("the inputs hold no valid event")
    report, rows = build_report(engine_a, engine_b, inputs, at, top)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.plots = plot(report, rows, out)
    (out / "report.json").write_bytes(report.to_json() + b"\n")
    (out / "report.md").write_text(markdown(report), "utf-8")
    return report

"""The history chart and the explanation waterfall, from API bodies, as accessible HTML.

The chart is inline SVG (no script) with a table of the same numbers beside it for screen
readers and keyboard users; the waterfall is a table whose bars are CSS widths on the 1-100
scale, so every bar is also a number in the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.explorer.markup import score_text, text

CHART_WIDTH = 720
CHART_HEIGHT = 200
CHART_PAD = 28
"""Room for the axis labels, in SVG units."""
SCALE_MIN, SCALE_MAX = 1.0, 100.0
GRID_SCORES = (1, 25, 50, 75, 100)
DAY_MS = 86_400_000

ADDED_REASONS = frozenset({"retweets", "quotes", "replies", "mentions", "audience", "burst"})
"""Reasons whose points are part of the score; the others (`new_account`, `reciprocity`) say
how many points an anti-gaming rule held back."""
REASON_LABELS = {
    "retweets": "Retweets",
    "quotes": "Quotes",
    "replies": "Replies",
    "mentions": "Mentions",
    "audience": "Audience",
    "burst": "Recent burst (temporary)",
    "new_account": "New-account shrinkage",
    "reciprocity": "Reciprocity (rings, mutual retweets)",
}


def day_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def time_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _y(score: float) -> float:
    inner = CHART_HEIGHT - 2 * CHART_PAD
    return CHART_PAD + inner * (1 - (score - SCALE_MIN) / (SCALE_MAX - SCALE_MIN))


def history_chart(history: Mapping[str, Any], label_id: str) -> str:
    """The daily closes as a line on the 1-100 scale, and the same closes as a table."""
    daily = history.get("daily") or {}
    scores: Sequence[float] = daily.get("scores") or []
    start = daily.get("start")
    if not scores or start is None:
        return '<p class="empty">No score change published yet: no history to chart.</p>'
    inner = CHART_WIDTH - 2 * CHART_PAD
    step = inner / max(1, len(scores) - 1)
    points = [(CHART_PAD + i * step, _y(s)) for i, s in enumerate(scores)]
    grid = "".join(
        f'<line x1="{CHART_PAD}" x2="{CHART_WIDTH - CHART_PAD}" y1="{_y(g):.1f}" '
        f'y2="{_y(g):.1f}" class="grid"/><text x="2" y="{_y(g) + 4:.1f}">{g}</text>'
        for g in GRID_SCORES
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>'
        f"{day_text(start + i * DAY_MS)}: {score_text(scores[i])}</title></circle>"
        for i, (x, y) in enumerate(points)
    )
    first, last = day_text(start), day_text(start + (len(scores) - 1) * DAY_MS)
    rows = "".join(
        f"<tr><td>{day_text(start + i * DAY_MS)}</td><td>{score_text(s)}</td></tr>"
        for i, s in enumerate(scores)
    )
    return f"""<figure class="chart">
<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-labelledby="{label_id}">
<title id="{label_id}">Daily closing score from {first} to {last}: {len(scores)} days,
last {score_text(scores[-1])}</title>
{grid}<polyline points="{line}" class="line"/>{dots}
<text x="{CHART_PAD}" y="{CHART_HEIGHT - 6}">{first}</text>
<text x="{CHART_WIDTH - CHART_PAD}" y="{CHART_HEIGHT - 6}" text-anchor="end">{last}</text>
</svg>
<figcaption>Daily closing score: the last score published each day (event time, UTC).
</figcaption>
<details><summary>The closes as a table</summary>
<table class="closes"><thead><tr><th scope="col">Day</th><th scope="col">Close</th></tr>
</thead><tbody>{rows}</tbody></table></details>
</figure>"""


def decay_points(history: Mapping[str, Any]) -> float:
    """Points the published score lost to decay-only changes among the kept changes."""
    lost = 0.0
    for change in history.get("changes") or []:
        previous = change.get("previous")
        if change.get("cause") == "decay" and previous is not None:
            lost += change["score"] - previous
    return round(lost, 2)


def _bar(offset: float, width: float, kind: str) -> str:
    left = (offset - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * 100
    size = abs(width) / (SCALE_MAX - SCALE_MIN) * 100
    return (
        f'<span class="track"><span class="bar {kind}" '
        f'style="margin-left:{max(0.0, left):.2f}%;width:{min(100.0, size):.2f}%"></span></span>'
    )


def waterfall(user: Mapping[str, Any], history: Mapping[str, Any]) -> str:
    """The score as steps: what each cause added (from the scale's floor of 1 up to the
    score), then what each anti-gaming rule held back and what decay took, each drawn from the
    score up to where the score would be without it."""
    score = float(user.get("score", SCALE_MIN))
    reasons = user.get("reasons") or []
    rows: list[str] = []
    level = SCALE_MIN
    rows.append(f"<tr><th scope=row>Scale floor</th><td>{score_text(SCALE_MIN)}</td><td></td></tr>")
    for r in reasons:
        if r["code"] in ADDED_REASONS and r["points"] > 0:
            label = REASON_LABELS.get(r["code"], r["code"])
            bar = _bar(level, r["points"], "added")
            rows.append(
                f"<tr><th scope=row>{text(label)}</th><td>+{r['points']:.2f}</td>"
                f"<td>{bar}</td></tr>"
            )
            level += r["points"]
    for r in reasons:
        if r["code"] not in ADDED_REASONS and r["points"] < 0:
            label = REASON_LABELS.get(r["code"], r["code"])
            rows.append(
                f'<tr class="removed"><th scope=row>{text(label)}</th>'
                f"<td>{r['points']:.2f}</td><td>{_bar(score, r['points'], 'removed')}</td></tr>"
            )
    lost = decay_points(history)
    if lost < 0:
        rows.append(
            f'<tr class="decay"><th scope=row>Decay (in the kept changes)</th>'
            f"<td>{lost:.2f}</td><td>{_bar(score, lost, 'decay')}</td></tr>"
        )
    rows.append(
        f'<tr class="total"><th scope=row>Score</th><td>{score_text(score)}</td>'
        f"<td>{_bar(SCALE_MIN, score - SCALE_MIN, 'total')}</td></tr>"
    )
    return f"""<table class="waterfall">
<caption>How the score is made, in points. Added: each cause's share of the score.
Removed: how many points higher the score would be without that anti-gaming rule. Decay: what
decay-only changes took from the published score.</caption>
<thead><tr><th scope="col">Step</th><th scope="col">Points</th>
<th scope="col"><span class="sr">Bar on the 1–100 scale</span></th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>"""

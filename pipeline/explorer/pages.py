"""Each explorer page as HTML, built from the API's JSON bodies: pure, so every page is
tested without a server (tests/test_explorer.py).

A user's page takes the bodies of `GET /users/{id}` (score, reasons, counts, topics, and,
when the model provides them, `audience_quality` and `confidence`), `/users/{id}/explain` and
`/users/{id}/history`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.explorer.charts import history_chart, time_text, waterfall
from pipeline.explorer.markup import score_text, shell, text, user_href

PERCENT = 100
CONTRIBUTOR_DIGITS = 3


@dataclass(frozen=True, slots=True)
class UserView:
    """What a user's page shows: the three API answers about one user."""

    user: Mapping[str, Any]
    explanation: Mapping[str, Any]
    history: Mapping[str, Any]


def _top_list(body: Mapping[str, Any], heading: str, label_id: str) -> str:
    entries = body.get("users") or []
    if not entries:
        return ""
    topic = body.get("topic")
    items = "".join(
        f'<li><a href="{user_href(e["user"])}">{text(e["user"])}</a> '
        f'<span class="num">{score_text(e["topic_score"] if topic else e["score"])}</span></li>'
        for e in entries
    )
    return (
        f'<section aria-labelledby="{label_id}"><h2 id="{label_id}">{text(heading)}</h2>'
        f'<ol class="top">{items}</ol></section>'
    )


def index_page(overall: Mapping[str, Any], by_topic: Sequence[Mapping[str, Any]]) -> str:
    """`/ui/`: the search box (in the shell), the top list overall and one per topic."""
    lists = [_top_list(overall, "Top overall", "top-all")]
    for i, ranking in enumerate(by_topic):
        lists.append(_top_list(ranking, f"Top in #{ranking.get('topic')}", f"top-{i}"))
    as_of = overall.get("as_of")
    when = f"<p>Scores read at {time_text(as_of)} (event time).</p>" if as_of else ""
    page = (
        "<h1>Influence scores</h1>"
        "<p>Search a user id above, or pick a user below. Compare two at "
        "<code>/ui/compare?users=a,b</code>.</p>"
        + when
        + '<div class="lists">'
        + "".join(lists)
        + "</div>"
    )
    return shell("Top users", page)


def _quality(user: Mapping[str, Any]) -> str:
    """Audience quality and confidence, when the model provides them (else nothing)."""
    parts: list[str] = []
    quality = user.get("audience_quality")
    if isinstance(quality, Mapping) and isinstance(quality.get("score"), int | float):
        reasons = "".join(
            f"<li>{text(r.get('rule'))}: {float(r.get('share', 0.0)) * PERCENT:.0f}%</li>"
            for r in quality.get("reasons") or []
        )
        listed = f'<ul class="quality-reasons">{reasons}</ul>' if reasons else ""
        parts.append(
            f'<div class="stat"><dt>Audience quality</dt><dd class="audience-quality">'
            f"{quality['score']:.0f}<span class=unit>/100</span>{listed}</dd></div>"
        )
    confidence = user.get("confidence")
    if isinstance(confidence, int | float):
        parts.append(
            f'<div class="stat"><dt>Confidence</dt><dd class="confidence">'
            f"{confidence * PERCENT:.0f}%</dd></div>"
        )
    return "".join(parts)


def _contributors(explanation: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td><a href="{user_href(c["user"])}">{text(c["user"])}</a></td>'
        f'<td class="num">{c["mass"]:.{CONTRIBUTOR_DIGITS}g}</td>'
        f"<td>{'yes' if c.get('reciprocal') else 'no'}</td></tr>"
        for c in explanation.get("top_contributors") or []
    )
    if not rows:
        return '<p class="empty">Nobody has engaged this user yet.</p>'
    return (
        '<table class="contributors"><thead><tr><th scope="col">Engager</th>'
        '<th scope="col">Mass</th><th scope="col">Reciprocal</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _topics(explanation: Mapping[str, Any]) -> str:
    scores = {t["topic"]: t["score"] for t in explanation.get("topic_scores") or []}
    rows = "".join(
        f"<tr><td>#{text(t['topic'])}</td><td>{'yes' if t['published'] else 'not yet'}</td>"
        f"<td class=num>{score_text(scores.get(t['topic']))}</td>"
        f"<td class=num>{t['own_tweets']}</td><td class=num>{t['days']}</td>"
        f"<td class=num>{t['engagers']}</td><td class=num>{t['engagements']}</td>"
        f"<td class=num>{t['share'] * PERCENT:.0f}%</td></tr>"
        for t in explanation.get("topics") or []
    )
    if not rows:
        return '<p class="empty">No topics seen for this user.</p>'
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "Topic",
            "Published",
            "Score",
            "Own tweets",
            "Days",
            "Engagers",
            "Engagements",
            "Share",
        )
    )
    return f'<table class="topics"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _changes(history: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{time_text(c['event_time'])}</td><td>{text(c['cause'])}</td>"
        f"<td class=num>{score_text(c['previous'])}</td><td class=num>{score_text(c['score'])}</td>"
        "</tr>"
        for c in reversed(history.get("changes") or [])
    )
    if not rows:
        return ""
    count = len(history.get("changes") or [])
    return (
        f"<details><summary>Latest score changes ({count}), with their causes</summary>"
        '<table class="changes"><caption>Newest first</caption><thead>'
        '<tr><th scope="col">When</th><th scope="col">Cause</th><th scope="col">From</th>'
        f'<th scope="col">To</th></tr></thead><tbody>{rows}</tbody></table></details>'
    )


def user_section(view: UserView, slot: str) -> str:
    """One user's panel (a page holds one, the comparison two); `slot` keeps ids unique."""
    user = view.user
    name = str(user.get("user", ""))
    return f"""<article class="user" aria-labelledby="name-{slot}">
<h2 id="name-{slot}" class="user-name">{text(name)}</h2>
<dl class="stats">
<div class="stat"><dt>Score</dt><dd class="score">{score_text(user.get("score"))}</dd></div>
{_quality(user)}
</dl>
<section aria-labelledby="hist-{slot}"><h3 id="hist-{slot}">History (90 days)</h3>
{history_chart(view.history, f"chart-{slot}")}
{_changes(view.history)}</section>
<section aria-labelledby="why-{slot}"><h3 id="why-{slot}">Why this score</h3>
{waterfall(user, view.history)}</section>
<section aria-labelledby="who-{slot}"><h3 id="who-{slot}">Top contributors</h3>
{_contributors(view.explanation)}</section>
<section aria-labelledby="topics-{slot}"><h3 id="topics-{slot}">Topics and their evidence</h3>
{_topics(view.explanation)}</section>
</article>"""


def user_page(view: UserView) -> str:
    name = str(view.user.get("user", ""))
    compare = (
        f'<p><a href="/ui/compare?users={text(name)},">Compare {text(name)} with another '
        "user</a></p>"
    )
    return shell(name, f"<h1>User {text(name)}</h1>{compare}{user_section(view, 'a')}")


def compare_page(views: Sequence[UserView]) -> str:
    names = [str(v.user.get("user", "")) for v in views]
    panels = "".join(user_section(v, slot) for v, slot in zip(views, "ab", strict=False))
    title = " and ".join(names)
    return shell(
        f"Compare {title}",
        f'<h1>Comparing {text(title)}</h1><div class="compare">{panels}</div>',
    )


def compare_form(given: str) -> str:
    """`/ui/compare` without two users: a form asking for them."""
    body = f"""<h1>Compare two users</h1>
<form action="/ui/compare" method="get" class="pair">
<label for="users">Two user ids, separated by a comma</label>
<input id="users" name="users" value="{text(given)}" required>
<button type="submit">Compare</button>
</form>"""
    return shell("Compare", body)


def not_found_page(user: str) -> str:
    body = f"""<h1>No such user</h1>
<p class="missing">There is no state for user <strong>{text(user)}</strong>: no event has
named this id (or it was forgotten). Check the id, or search again above.</p>
<p><a href="/ui/">Back to the top lists</a></p>"""
    return shell("User not found", body)


def error_page(status: int, detail: str) -> str:
    body = f"""<h1>Cannot show this page ({status})</h1>
<p class="error">{text(detail)}</p>
<p><a href="/ui/">Back to the top lists</a></p>"""
    return shell(f"Error {status}", body)

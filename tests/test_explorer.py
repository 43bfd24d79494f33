"""The score explorer's pages (pipeline/explorer), built from stub API answers: no server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import pytest

from pipeline.explorer import Page, explorer_page
from pipeline.explorer.charts import decay_points
from pipeline.explorer.pages import UserView, user_page

T0 = 1_735_689_600_000
DAY_MS = 86_400_000


def user_answer(user: str, **extra: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user": user,
        "score": 42.5,
        "reasons": [
            {"code": "retweets", "points": 30.0},
            {"code": "replies", "points": 11.5},
            {"code": "reciprocity", "points": -6.25},
        ],
        "topics": [{"topic": "higgs", "score": 40.0}],
    }
    body.update(extra)
    return body


def explain_answer(user: str) -> dict[str, Any]:
    return {
        "user": user,
        "top_contributors": [{"user": "fan<1>", "mass": 1.5, "reciprocal": True}],
        "topics": [
            {
                "topic": "higgs",
                "published": True,
                "own_tweets": 4,
                "days": 3,
                "engagers": 5,
                "engagements": 9,
                "top_tweet_share": 0.5,
                "wilson_share": 0.3,
                "share": 0.4,
            }
        ],
        "topic_scores": [{"topic": "higgs", "score": 40.0}],
    }


def history_answer(user: str) -> dict[str, Any]:
    return {
        "user": user,
        "score": 42.5,
        "daily": {"start": T0, "scores": [40.0, 45.0, 42.5]},
        "changes": [
            {"event_time": T0 + 60_000, "score": 40.0, "previous": None, "cause": "engagement"},
            {"event_time": T0 + DAY_MS, "score": 45.0, "previous": 40.0, "cause": "engagement"},
            {"event_time": T0 + 2 * DAY_MS, "score": 42.5, "previous": 45.0, "cause": "decay"},
        ],
    }


QUALITY = {
    "score": 73.0,
    "reasons": [{"rule": "bought_followers", "share": 0.25}],
}


def stub_api(users: Mapping[str, dict[str, Any]]) -> Any:
    async def fetch(path: str, query: Mapping[str, str]) -> tuple[int, Any]:
        if path == "/top":
            if "topic" in query:
                ranked = [{"user": u, "score": 42.5, "topic_score": 40.0} for u in users]
                return 200, {"topic": query["topic"], "users": ranked, "as_of": T0}
            ranked = [{"user": u, "score": 42.5, "topic_score": None} for u in users]
            return 200, {"topic": None, "users": ranked, "as_of": T0}
        _, _, rest = path.partition("/users/")
        user, _, part = rest.partition("/")
        user = unquote(user)
        if user not in users:
            return 404, {"error": "unknown_user", "detail": f"no state for user {user!r}"}
        if part == "explain":
            return 200, explain_answer(user)
        if part == "history":
            return 200, history_answer(user)
        return 200, users[user]

    return fetch


def page(path: str, known: Mapping[str, dict[str, Any]], **query: str) -> Page:
    return asyncio.run(explorer_page(path, query, stub_api(known)))


def test_a_user_page_shows_score_history_waterfall_contributors_and_topics() -> None:
    got = page("/ui/users/alice", {"alice": user_answer("alice")})
    html = got.body.decode()
    assert got.status == 200
    assert '<dd class="score">42.50</dd>' in html
    assert "2025-01-01" in html and "2025-01-03" in html  # the chart's days
    assert "+30.00" in html and "-6.25" in html and "Decay (in the kept changes)" in html
    assert "fan&lt;1&gt;" in html  # escaped, linked
    assert "#higgs" in html
    assert "Audience quality" not in html and "Confidence" not in html


def test_audience_quality_and_confidence_show_when_the_model_gives_them() -> None:
    alice = user_answer("alice", audience_quality=QUALITY, confidence=0.8)
    html = page("/ui/users/alice", {"alice": alice}).body.decode()
    assert '<dd class="audience-quality">73' in html
    assert "bought_followers: 25%" in html
    assert '<dd class="confidence">80%</dd>' in html


def test_a_missing_user_is_a_404_page_not_a_trace() -> None:
    got = page("/ui/users/nobody", {})
    assert got.status == 404 and got.content_type.startswith("text/html")
    assert "No such user" in got.body.decode() and "Traceback" not in got.body.decode()
    pair = page("/ui/compare", {"alice": user_answer("alice")}, users="alice,nobody")
    assert pair.status == 404 and "nobody" in pair.body.decode()


def test_compare_shows_two_users_side_by_side() -> None:
    users = {"alice": user_answer("alice"), "bob": user_answer("bob", confidence=0.5)}
    html = page("/ui/compare", users, users="alice, bob").body.decode()
    assert html.count('class="user"') == 2 and 'id="name-a"' in html and 'id="name-b"' in html
    assert page("/ui/compare", users, users="alice").status == 400
    assert page("/ui/compare", users).status == 200  # the form


def test_the_index_lists_the_top_and_one_list_per_topic() -> None:
    html = page("/ui/", {"alice": user_answer("alice")}).body.decode()
    assert "Top overall" in html and "Top in #higgs" in html
    assert 'href="/ui/users/alice"' in html


def test_search_redirects_to_the_user_page_and_ids_are_escaped() -> None:
    got = page("/ui/users", {}, q=" a b/c ")
    assert got.status == 303 and got.headers["Location"] == "/ui/users/a%20b%2Fc"
    evil = '<script>alert("x")</script>'
    html = page(f"/ui/users/{evil}", {evil: user_answer(evil)}).body.decode()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_stylesheet_ships_in_the_package_and_nothing_is_loaded_from_elsewhere() -> None:
    css = page("/ui/static/explorer.css", {})
    assert css.status == 200 and css.content_type.startswith("text/css")
    html = page("/ui/users/alice", {"alice": user_answer("alice")}).body.decode()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert page("/ui/static/../../etc/passwd", {}).status == 404


@pytest.mark.parametrize("changes, lost", [([], 0.0), (history_answer("x")["changes"], -2.5)])
def test_decay_counts_only_decay_changes(changes: list[dict[str, Any]], lost: float) -> None:
    assert decay_points({"changes": changes}) == lost


def test_a_user_without_history_says_so() -> None:
    empty = {"daily": {"start": None, "scores": []}, "changes": []}
    html = user_page(UserView(user_answer("a"), explain_answer("a"), empty))
    assert "No score change published yet" in html


@pytest.mark.parametrize(
    "text, address",
    [("8000", ("127.0.0.1", 8000)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9", ("::1", 9))],
)
def test_serve_addresses(text: str, address: tuple[str, int]) -> None:
    from pipeline.explorer.serve import parse_address

    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "host:", "host:port", "70000"])
def test_bad_serve_addresses(text: str) -> None:
    from pipeline.explorer.serve import parse_address

    with pytest.raises(ValueError):
        parse_address(text)

"""Which explorer page a request asks for, and the API answers that page needs.

`explorer_page` is the whole explorer behind one function: a path under `/ui/`, its query,
and a `Fetch` that asks the query API (a worker asks itself over HTTP, so a user owned by
another worker is forwarded there as any API request is; `influence replay --serve` answers
from the replayed engine). Errors of the API become pages: a missing user is a 404 page that
says so, never a stack trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

from pipeline.explorer.pages import (
    UserView,
    compare_form,
    compare_page,
    error_page,
    index_page,
    not_found_page,
    user_page,
)

TOP_LIST_USERS = 10
TOPIC_LISTS = 4
"""Topic lists on `/ui/`: the topics published most often among the top users."""
TOPIC_LIST_USERS = 5
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
PREFIX = "/ui"
STATIC_FILES = frozenset({"explorer.css"})

Fetch = Callable[[str, Mapping[str, str]], Awaitable[tuple[int, Any]]]
"""Asks the query API: (path, query) -> (status, decoded JSON body)."""


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    body: bytes
    content_type: str = HTML
    headers: Mapping[str, str] = field(default_factory=dict)


def _html(status: int, page: str) -> Page:
    return Page(status, page.encode())


def _api_path(user: str, part: str = "") -> str:
    return "/users/" + quote(user, safe="") + part


def _failure(status: int, body: Any, user: str) -> Page:
    if status == 404:
        return _html(404, not_found_page(user))
    detail = body.get("detail", "") if isinstance(body, dict) else ""
    return _html(status, error_page(status, str(detail) or "the query API did not answer"))


async def _user_view(user: str, fetch: Fetch) -> UserView | Page:
    answers = []
    for part in ("", "/explain", "/history"):
        status, body = await fetch(_api_path(user, part), {})
        if status != 200 or not isinstance(body, dict):
            return _failure(status, body, user)
        answers.append(body)
    return UserView(*answers)


async def _index(fetch: Fetch) -> Page:
    status, overall = await fetch("/top", {"n": str(TOP_LIST_USERS)})
    if status != 200 or not isinstance(overall, dict):
        return _failure(status, overall, "")
    topics: Counter[str] = Counter()
    for entry in overall.get("users") or []:
        got, body = await fetch(_api_path(entry["user"]), {})
        if got == 200 and isinstance(body, dict):
            topics.update(t["topic"] for t in body.get("topics") or [])
    by_topic = []
    for topic, _ in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))[:TOPIC_LISTS]:
        got, body = await fetch("/top", {"n": str(TOPIC_LIST_USERS), "topic": topic})
        if got == 200 and isinstance(body, dict):
            by_topic.append(body)
    return _html(200, index_page(overall, by_topic))


async def _compare(query: Mapping[str, str], fetch: Fetch) -> Page:
    given = query.get("users", "")
    users = [u.strip() for u in given.split(",") if u.strip()]
    if len(users) != 2:
        return _html(200 if not given else 400, compare_form(given))
    views = []
    for user in users:
        view = await _user_view(user, fetch)
        if isinstance(view, Page):
            return view
        views.append(view)
    return _html(200, compare_page(views))


def static_file(name: str) -> Page:
    if name not in STATIC_FILES:
        return _html(404, error_page(404, f"no such file: {name[:100]}"))
    data = resources.files("pipeline.explorer").joinpath("static", name).read_bytes()
    return Page(200, data, CSS, {"Cache-Control": "max-age=3600"})


async def explorer_page(path: str, query: Mapping[str, str], fetch: Fetch) -> Page:
    """The page for `path` (percent-decoded, under `/ui`)."""
    rest = path[len(PREFIX) :] if path.startswith(PREFIX) else None
    if rest in (None, "", "/"):
        return await _index(fetch) if rest is not None else _html(404, error_page(404, path))
    assert rest is not None
    if rest.startswith("/static/"):
        return static_file(rest[len("/static/") :])
    if rest in ("/users", "/users/"):
        wanted = query.get("q", "").strip()
        if not wanted:
            return await _index(fetch)
        return Page(303, b"", HTML, {"Location": PREFIX + _api_path(wanted)})
    if rest.startswith("/users/"):
        user = rest[len("/users/") :]
        view = await _user_view(user, fetch)
        return view if isinstance(view, Page) else _html(200, user_page(view))
    if rest == "/compare":
        return await _compare(query, fetch)
    return _html(404, error_page(404, f"no such page: {path[:200]}"))

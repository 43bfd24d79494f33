"""Escaping and the page shell every explorer page shares."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

STYLESHEET = "/ui/static/explorer.css"
SCORE_DIGITS = 2
"""Scores are published rounded to two decimals: shown as published."""


def text(value: object) -> str:
    """`value` as HTML text (escaped)."""
    return escape(str(value), quote=True)


def user_href(user: str) -> str:
    return "/ui/users/" + quote(user, safe="")


def score_text(score: object) -> str:
    return f"{score:.{SCORE_DIGITS}f}" if isinstance(score, int | float) else "–"


def shell(title: str, body: str) -> str:
    """A whole page: language, title, the packaged stylesheet, a skip link, the search form."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)} · influence explorer</title>
<link rel="stylesheet" href="{STYLESHEET}">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<a class="home" href="/ui/">influence explorer</a>
<form class="search" role="search" action="/ui/users" method="get">
<label for="q">User id</label>
<input id="q" name="q" type="search" required maxlength="256" autocomplete="off">
<button type="submit">Show</button>
</form>
</header>
<main id="main">
{body}
</main>
</body>
</html>
"""

"""The query API's answers as plain data: a `Reply` (status, JSON body, headers) built by pure
functions, so every status and body is tested without a web server or a broker.

Here: the error shape, the bearer-token check, user-id checks, the bodies of `GET /users/{id}`
and `/users/{id}/explain`, readiness, and what the router's own 404/405 say. Rankings
(`GET /top`) are in `pipeline.api.top`; the Faust views that send these are in
`pipeline.api.views`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from pipeline.replay import snapshot_record
from scoring import Model, UserState, explain, read_mass
from scoring.events import MAX_ID_LENGTH
from scoring.score import reasons

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status and a JSON body."""

    status: int
    body: object
    headers: Mapping[str, str] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self.body)


def error(status: int, code: str, detail: str) -> Reply:
    """The API's error shape: ``{"error": code, "detail": text}``."""
    headers = {"WWW-Authenticate": 'Bearer realm="influence"'} if status == 401 else None
    return Reply(status, {"error": code, "detail": detail}, headers)


def check_token(authorization: str | None, token: str | None) -> Reply | None:
    """None when the request may pass: no token configured, or the right bearer token."""
    if not token:
        return None
    if authorization is None:
        return error(401, "unauthorized", "missing Authorization: Bearer <token>")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return error(401, "unauthorized", "bad bearer token")
    return None


def check_user_id(user: str) -> Reply | None:
    """None for an id an event could have carried; else a 400 (no lookup for it is needed)."""
    if not user or len(user) > MAX_ID_LENGTH:
        return error(400, "bad_user_id", f"user ids have 1..{MAX_ID_LENGTH} characters")
    return None


def user_body(user: str, state: UserState, now: int, model: Model) -> dict[str, object]:
    """Score, its components (reasons), counts, windows and published topics at event time."""
    body = snapshot_record(user, state, now, model)
    mass = read_mass(state, now, model)
    body["reasons"] = [{"code": r.code, "points": r.points} for r in reasons(state, mass, model)]
    body["as_of"] = now
    return body


def explain_body(user: str, state: UserState, now: int, model: Model) -> dict[str, object]:
    """The full explanation (scoring.explain) with who, which model and at what event time."""
    body = explain(state, now, model).as_dict()
    body["user"] = user
    body["model_version"] = model.model_version
    body["as_of"] = now
    return body


def user_reply(
    user: str,
    found: tuple[UserState, int] | None,
    model: Model,
    render: Callable[[str, UserState, int, Model], dict[str, object]] = user_body,
) -> Reply:
    """`GET /users/{id}` (or `/explain`, by `render`) for the user `found` at its read time."""
    bad = check_user_id(user)
    if bad is not None:
        return bad
    if found is None:
        return error(404, "unknown_user", f"no state for user {user[:MAX_ID_LENGTH]!r}")
    state, now = found
    return Reply(200, render(user, state, now, model))


def routing_error(status: int, method: str, path: str) -> Reply:
    """What the web server's own 404 and 405 answers say, in the API's error shape."""
    if status == 405:
        return error(405, "method_not_allowed", f"{method} is not allowed on {path[:300]}")
    return error(404, "not_found", f"no such path: {path[:300]}")


def readiness(recovered: bool) -> Reply:
    """`/readyz`: 503 while table recovery runs, so no traffic reaches a half-restored state."""
    if recovered:
        return Reply(200, {"status": "ready"})
    return Reply(503, {"status": "recovering"})

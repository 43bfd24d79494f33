"""`GET /top?n=&topic=&at=`: one ranking across every worker, at one event time.

Every worker ranks its own users (asked by a peer: `local=1`) at the time the asked worker
picks and passes on; the asked worker merges the answers. Each worker ranks from its leader
boards (`pipeline.leaders`), not by scanning its table; `rank_users` is the brute-force ranking
they must equal. Everything here is plain code over a `Ranker` and a function that asks the
peers, so a two-worker ranking is tested in milliseconds; the HTTP side is in
`pipeline.api.views`.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from pipeline.api.replies import Reply, error
from pipeline.leaders import TopEntry
from scoring import Model, UserState, read_mass, score_of
from scoring.events import MAX_ID_LENGTH, MAX_TS_MS, MIN_TS_MS
from scoring.model import DAY_MS
from scoring.score import topic_scores

DEFAULT_TOP = 10
MAX_TOP = 1000
PEER_AT_TRAIL_MS = 365 * DAY_MS
"""How far a peer's `at` (`local=1`) may trail this worker's stream time: it picked the time
before this worker processed more, or it is catching up after a failover. A year keeps every
exponential of the model finite (the burst's, read a year early, is e^126)."""


@dataclass(frozen=True, slots=True)
class TopQuery:
    n: int
    topic: str | None
    local: bool
    at: int | None = None
    """The event time (ms) to rank at; None: the latest the workers have seen."""


def _integer(raw: str, low: int, high: int) -> int | None:
    text = raw.strip()
    if len(text) > 20 or not text.isascii() or not text.isdigit():
        return None  # (a huge number would be refused by int() itself, as an exception)
    value = int(text)
    return value if low <= value <= high else None


def parse_top_query(query: Mapping[str, str]) -> TopQuery | Reply:
    """`n` (1..MAX_TOP, default DEFAULT_TOP), `topic` (a hashtag, `#` and case ignored), `at`
    (an event time in ms, within the times events may have)."""
    raw_n = query.get("n")
    n = DEFAULT_TOP
    if raw_n is not None:
        parsed = _integer(raw_n, 1, MAX_TOP)
        if parsed is None:
            return error(400, "bad_parameter", f"n must be an integer in 1..{MAX_TOP}")
        n = parsed
    raw_at = query.get("at")
    at = None
    if raw_at is not None:
        at = _integer(raw_at, MIN_TS_MS, MAX_TS_MS)
        if at is None:
            return error(
                400, "bad_parameter", f"at must be an event time in ms, {MIN_TS_MS}..{MAX_TS_MS}"
            )
    topic = query.get("topic")
    if topic is not None:
        topic = topic.strip().lstrip("#").lower()
        if not topic or len(topic) > MAX_ID_LENGTH:
            return error(400, "bad_parameter", f"topic must have 1..{MAX_ID_LENGTH} characters")
    local = query.get("local", "0")
    if local not in ("0", "1"):
        return error(400, "bad_parameter", "local must be 0 or 1")
    return TopQuery(n, topic, local == "1", at)


def check_at(at: int | None, stream_time: int | None, trail_ms: int = 0) -> Reply | None:
    """None when a ranking may be read at `at`. A state holds every event up to the stream
    time, so an earlier read would not be the ranking of that moment: refused (409), except
    for a peer's time trailing by at most `trail_ms` (the one time of a merged ranking)."""
    if at is None or stream_time is None or at >= stream_time - trail_ms:
        return None
    return error(
        409,
        "at_before_stream_time",
        f"at={at} is before the stream time {stream_time}: ask at or after it",
    )


def rank_users(
    users: Iterable[tuple[str, UserState, int]], n: int, topic: str | None, model: Model
) -> list[TopEntry]:
    """The n best of `users` by score, or by topic score for users who publish `topic`, each
    read at its own time: the brute-force ranking the leader boards must equal."""
    entries: list[TopEntry] = []
    for user, state, now in users:
        if state.received is None:
            continue  # never engaged: the lowest score, and not a ranking
        mass = read_mass(state, now, model)
        topic_score = None
        if topic is not None:
            topic_score = next(
                (t.score for t in topic_scores(state, mass, model) if t.topic == topic), None
            )
            if topic_score is None:
                continue
        entries.append(TopEntry(user, score_of(mass, model), topic_score))
    return heapq.nsmallest(n, entries, key=TopEntry.rank)


def merge_top(lists: Iterable[Iterable[TopEntry]], n: int) -> list[TopEntry]:
    """One ranking from each worker's; a user seen twice (mid-rebalance) counts once."""
    seen: set[str] = set()
    merged: list[TopEntry] = []
    for entry in sorted((e for entries in lists for e in entries), key=TopEntry.rank):
        if entry.user not in seen:
            seen.add(entry.user)
            merged.append(entry)
    return merged[:n]


def top_body(
    entries: list[TopEntry],
    query: TopQuery,
    model_version: str,
    complete: bool,
    as_of: int | None = None,
    stream_time: int | None = None,
) -> dict[str, object]:
    """`as_of`: the one event time every score is read at (None: no event yet);
    `stream_time`: the latest event time the answering workers have seen."""
    return {
        "n": query.n,
        "topic": query.topic,
        "model_version": model_version,
        "complete": complete,
        "as_of": as_of,
        "stream_time": stream_time,
        "users": [e.as_dict() for e in entries],
    }


def entries_from_body(body: object) -> list[TopEntry]:
    """A peer's `local=1` answer back into entries (raises on a malformed answer)."""
    if not isinstance(body, dict) or not isinstance(body.get("users"), list):
        raise ValueError("not a /top answer")
    return [
        TopEntry(
            str(u["user"]),
            float(u["score"]),
            None if u["topic_score"] is None else float(u["topic_score"]),
        )
        for u in body["users"]
    ]


def answer_times(body: object) -> tuple[int | None, int | None]:
    """A peer's `local=1` answer: (as_of, stream_time); raises on a malformed answer."""
    if not isinstance(body, dict):
        raise ValueError("not a /top answer")
    times = body.get("as_of"), body.get("stream_time")
    if not all(t is None or type(t) is int for t in times):
        raise ValueError("as_of and stream_time must be integers or null")
    return times


def latest_of(*times: int | None) -> int | None:
    """The latest of the known times; None when none is known (no event anywhere yet)."""
    known = [t for t in times if t is not None]
    return max(known) if known else None


PeerRankings = tuple[list[list[TopEntry]], int | None, bool]
"""The other workers' rankings, the latest stream time they report, whether all answered."""


class Ranker(Protocol):
    """What a ranking needs of a worker (`pipeline.api.read_model.WorkerState`)."""

    def stream_time(self) -> int | None: ...

    def top(self, n: int, topic: str | None, at: int) -> list[TopEntry]: ...


async def top_answer(
    worker: Ranker,
    query: TopQuery,
    routed: bool,
    ask_peers: Callable[[int | None], Awaitable[PeerRankings]],
    model_version: str,
) -> Reply:
    """One ranking at one event time. Asked by a peer (`routed`: `local=1`), this worker's
    users at the peer's `at`. Asked by a client, at its `at`, else at the latest event time any
    worker reports: the peers are asked at this worker's time, and asked again at theirs if one
    is ahead (two rounds at most), then the rankings are merged."""
    own_time = worker.stream_time()
    if routed:
        refused = check_at(query.at, own_time, PEER_AT_TRAIL_MS)
        if refused is not None:
            return refused
        at = query.at if query.at is not None else own_time
        local = [] if at is None else worker.top(query.n, query.topic, at)
        return Reply(200, top_body(local, query, model_version, True, at, own_time))
    refused = check_at(query.at, own_time)
    if refused is not None:
        return refused
    at = query.at if query.at is not None else own_time
    lists, latest, complete = await ask_peers(at)
    latest = latest_of(own_time, latest)
    if query.at is None and latest is not None and (at is None or latest > at):
        at = latest
        lists, again, complete = await ask_peers(at)
        latest = latest_of(latest, again)
    local = [] if at is None else worker.top(query.n, query.topic, at)
    merged = merge_top([local, *lists], query.n)
    return Reply(200, top_body(merged, query, model_version, complete, at, latest))

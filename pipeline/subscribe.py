"""`influence subscribe`: follow the score-changes topic and print each change readably.

A plain Kafka consumer without a consumer group (nothing is committed; every subscriber sees
every change), reading committed transactions only. The printing and filtering are plain
functions over the decoded event (schemas/influence.score.changed.v1.json).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from pipeline.settings import Settings

REASONS_SHOWN = 4
TOPICS_SHOWN = 3
POLL_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class Filter:
    min_delta: float = 0.0
    """Only changes of at least this many points (a new user's change is its whole score)."""
    users: frozenset[str] = frozenset()
    """Only these users (all when empty)."""

    def wants(self, user: str, change: dict[str, Any] | None) -> bool:
        if self.users and user not in self.users:
            return False
        if change is None:
            return True  # a forgotten user: always worth knowing
        return abs(delta(change)) >= self.min_delta


def delta(change: dict[str, Any]) -> float:
    previous = change.get("previous")
    score = float(change["score"])
    return score - float(previous) if previous is not None else score


def format_change(user: str, change: dict[str, Any] | None) -> str:
    """One line: event time, user, score, change, cause, top reasons and topics."""
    if change is None:
        return f"{'-':<20}  {user:<20} forgotten (tombstone)"
    moment = datetime.fromtimestamp(change["event_time"] / 1000, tz=UTC)
    when = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = change.get("previous")
    move = "new" if previous is None else f"{delta(change):+.2f}"
    reasons = ", ".join(
        f"{r['code']} {r['points']:+.1f}" for r in change["reasons"][:REASONS_SHOWN]
    )
    line = f"{when}  {user:<20} {change['score']:6.2f} ({move:>6})  {change['cause']:<11} {reasons}"
    topics = change.get("topics") or []
    if topics:
        line += "  #" + ", #".join(f"{t['topic']} {t['score']:.1f}" for t in topics[:TOPICS_SHOWN])
    return line


def json_line(user: str, change: dict[str, Any] | None) -> str:
    """The event as one JSON line; a tombstone becomes ``{"user": ..., "forgotten": true}``."""
    body = change if change is not None else {"user": user, "forgotten": True}
    return orjson.dumps(body).decode()


def decode(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None]:
    """(user, change or None for a tombstone); raises ValueError on a malformed message."""
    if value is None:
        if key is None:
            raise ValueError("a tombstone without a key")
        return key.decode("utf-8", "replace"), None
    try:
        change = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(change, dict) or not isinstance(change.get("user"), str):
        raise ValueError("not a score-change event")
    for field_ in ("score", "event_time", "cause", "reasons"):
        if field_ not in change:
            raise ValueError(f"score-change event without {field_}")
    return change["user"], change


async def follow(
    settings: Settings,
    wanted: Filter,
    *,
    from_beginning: bool = False,
    as_json: bool = False,
    limit: int | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Prints matching changes until `limit` were printed (or forever); returns how many."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.topics.score_changes,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    printed = 0
    try:
        while limit is None or printed < limit:
            batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for tp, messages in sorted(batches.items(), key=lambda kv: kv[0].partition):
                for message in messages:
                    try:
                        user, change = decode(message.key, message.value)
                    except ValueError as exc:
                        print(
                            f"skipped {tp.topic}/{tp.partition}@{message.offset}: {exc}", file=err
                        )
                        continue
                    if not wanted.wants(user, change):
                        continue
                    text = json_line(user, change) if as_json else format_change(user, change)
                    print(text, file=out)
                    out.flush()
                    printed += 1
                    if limit is not None and printed >= limit:
                        return printed
    finally:
        await consumer.stop()
    return printed


def run_subscribe(
    settings: Settings,
    *,
    min_delta: float,
    users: Sequence[str],
    from_beginning: bool,
    as_json: bool,
    limit: int | None,
) -> int:
    wanted = Filter(min_delta, frozenset(users))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            follow(settings, wanted, from_beginning=from_beginning, as_json=as_json, limit=limit)
        )
    return 0

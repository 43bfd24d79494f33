"""Bytes in and out: v1 events from JSON or SNAP Higgs lines, score events and snapshots out.

Decoding never raises: a line that is not a valid event becomes an `Invalid` with a reason,
which the caller turns into a dead-letter record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from scoring import Event, Explanation, Invalid, ScoreChange, parse_event
from scoring.events import MAX_TS_MS, MIN_TS_MS

ACCEPTED_TIMES = "2000-01-01T00:00:00Z to 2079-12-31T23:59:59.999Z"
"""The event times the model can score (`scoring.events.MIN_TS_MS` .. `MAX_TS_MS`)."""

MAX_EVENT_BYTES = 64 * 1024
SCORE_EVENT_TYPE = "influence.score.changed.v1"
DEAD_LETTER_TYPE = "influence.dead_letter.v1"
HIGGS_KINDS = {"RT": "retweet", "MT": "mention", "RE": "reply"}


@dataclass(frozen=True, slots=True)
class OutsideWindow(Invalid):
    """`bad_value` for an event time outside `ACCEPTED_TIMES`, with that time, so that the
    worker can tell a time ahead of its clock apart (`refuse_future`: `ts_in_future`)."""

    ts: int


def decode_json_event(data: bytes) -> Event | Invalid:
    """One v1 event from its JSON bytes."""
    if len(data) > MAX_EVENT_BYTES:
        return Invalid("oversize", f"event is {len(data)} bytes, limit {MAX_EVENT_BYTES}")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = "bad_utf8" if "utf-8" in str(exc).lower() else "bad_json"
        return Invalid(reason, str(exc)[:200])
    decoded = parse_event(obj)
    if isinstance(decoded, Invalid) and decoded.reason == "bad_value" and type(obj) is dict:
        ts = obj.get("ts")
        # The decoder checks kind and ts before any other value, so a bad_value with a
        # time outside the window is that time's.
        if type(ts) is int and not MIN_TS_MS <= ts <= MAX_TS_MS:
            return OutsideWindow("bad_value", decoded.detail, ts)
    return decoded


@functools.lru_cache(maxsize=1 << 16)
def key_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key (murmur2), as every Kafka client computes it.
    Remembered: murmur2 is pure Python in aiokafka and the same users come back again and
    again (it was 6 % of a worker's CPU). aiokafka is imported here only, not by the replay."""
    from aiokafka.partitioner import murmur2

    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def refuse_future(decoded: Event | Invalid, now_ms: int, max_ahead_ms: int) -> Invalid | None:
    """`ts_in_future` for an event time more than `max_ahead_ms` after `now_ms` (wall clock:
    the one plausibility check event time gets, against producers with a broken clock).

    Also for a decoded `OutsideWindow` time that far ahead: the decoder refuses any time
    after 2079 (`bad_value`), but a worker should say what the operator has to look for, a
    producer's clock or unit. Call it before returning the decoder's refusal; None for any
    other refusal and for a time not that far ahead.
    """
    if isinstance(decoded, Invalid):
        if not isinstance(decoded, OutsideWindow) or decoded.ts - now_ms <= max_ahead_ms:
            return None
        return Invalid(
            "ts_in_future",
            f"event time {decoded.ts} ms is more than {max_ahead_ms} ms after {now_ms}, "
            f"and outside the event times accepted ({ACCEPTED_TIMES})",
        )
    if decoded.ts - now_ms <= max_ahead_ms:
        return None
    return Invalid(
        "ts_in_future",
        f"event time {decoded.ts} ms is more than {max_ahead_ms} ms after {now_ms}",
    )


def decode_higgs_line(line: bytes, line_number: int) -> Event | Invalid:
    """`actor target unix_seconds RT|MT|RE` -> v1 event with id = line number (INTERFACES.md)."""
    parts = line.split()
    if len(parts) != 4:
        return Invalid("bad_higgs_line", "expected 4 space-separated fields")
    actor, target, seconds, code = parts
    kind = _HIGGS_CODES.get(code)
    if kind is None:
        return Invalid("unknown_kind", f"Higgs kind {code[:10]!r} is not RT, MT or RE")
    if not seconds.isdigit():
        return Invalid("wrong_type", "timestamp must be integer seconds")
    ts = int(seconds) * 1000
    if not MIN_TS_MS <= ts <= MAX_TS_MS:
        return OutsideWindow("bad_value", "timestamp is out of range", ts)
    try:
        actor_id, target_id = actor.decode("utf-8"), target.decode("utf-8")
    except UnicodeDecodeError:
        return Invalid("bad_utf8", "user ids are not UTF-8")
    return Event._make((str(line_number), kind, ts, actor_id, target_id, *_NO_REFERENCES))


_HIGGS_CODES = {code.encode("ascii"): kind for code, kind in HIGGS_KINDS.items()}
_NO_REFERENCES = (None, None, (), (), None)
"""An event's tweet_id, ref_tweet_id, hashtags, ref_hashtags, followers: none in Higgs."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input that could not be scored, with where it came from and why."""

    reason: str
    detail: str
    raw: bytes
    source: str
    """File name or Kafka topic."""
    position: int
    """Line number (files) or offset (Kafka)."""
    partition: int | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "type": DEAD_LETTER_TYPE,
                "reason": self.reason,
                "detail": self.detail,
                "source": self.source,
                "partition": self.partition,
                "position": self.position,
                "raw": self.raw.decode("utf-8", "backslashreplace"),
            }
        )


def score_event_id(change: ScoreChange, cause_id: str) -> str:
    return f"{change.user}:{change.event_time}:{cause_id}"


def score_change_json(change: ScoreChange, cause_id: str, model_version: str) -> bytes:
    """The score-change event of INTERFACES.md (schemas/influence.score.changed.v1.json)."""
    quality = change.audience_quality
    return orjson.dumps(
        {
            "type": SCORE_EVENT_TYPE,
            "id": score_event_id(change, cause_id),
            "user": change.user,
            "score": change.score,
            "previous": change.previous,
            "model_version": model_version,
            "event_time": change.event_time,
            "cause": change.cause,
            "reasons": [{"code": r.code, "points": r.points} for r in change.reasons],
            "topics": [{"topic": t.topic, "score": t.score} for t in change.topics],
            "audience_quality": {
                "score": quality.score,
                "reasons": [{"rule": r.rule, "share": r.share} for r in quality.reasons],
            },
            "confidence": change.confidence,
        }
    )


def explanation_json(user: str, explanation: Explanation, model_version: str) -> bytes:
    body = explanation.as_dict()
    body["user"] = user
    body["model_version"] = model_version
    return orjson.dumps(body)

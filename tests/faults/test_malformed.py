"""10,000 malformed inputs generated with hypothesis, mixed into a valid stream: the worker
stays up, every one of them lands in the dead-letter topic with a reason, and the valid events
around them score exactly as without them."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codec import MAX_EVENT_BYTES, decode_json_event, refuse_future
from pipeline.settings import Topics
from scoring import Event, Invalid, Model
from scoring.events import EVENT_KINDS, MAX_ID_LENGTH, MAX_TS_MS, MIN_TS_MS, event_to_dict
from scoring.model import DAY_MS
from tests.faults.conftest import FULL
from tests.faults.kit import assert_outcome_exact, embedded, higgs_events, start_worker
from tests.integration.pipeline_kit import (
    Deployment,
    read_topic,
    wait_until_processed,
)

MALFORMED = 10_000
VALID = 20_000 if FULL else 3_000
BATCH = 50
"""Malformed messages per hypothesis example (MALFORMED / BATCH examples)."""
TS = 1_341_100_000_000
FAR_AHEAD_MS = 3_155_760_000_000
"""2070-01-01: inside the accepted event times (to 2079), beyond the worker's one-day allowance
for as long as this code lives."""
FAR_AHEAD_ALLOWANCE_MS = 365 * DAY_MS
"""What the decoder test allows ahead of the wall clock: far less than FAR_AHEAD_MS is away."""
TOPICS = ("tweets", "retweets", "mentions")

ids = st.text(min_size=1, max_size=12)
int64 = st.integers(-(2**63), 2**63 - 1)
junk: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
wrong_types = st.one_of(
    st.tuples(st.just("ts"), st.text(max_size=10) | st.floats() | st.booleans() | st.lists(junk)),
    st.tuples(
        st.sampled_from(["id", "actor", "target"]), st.floats() | st.booleans() | st.lists(junk)
    ),
    st.tuples(st.just("kind"), int64 | st.booleans() | st.lists(junk)),
    st.tuples(st.just("followers"), st.integers(-(2**63), -1) | st.text(max_size=5)),
    st.tuples(st.just("hashtags"), st.text(max_size=5) | st.lists(int64, min_size=1)),
)


def base(actor: str, kind: str = "retweet") -> dict[str, Any]:
    return {"id": "m", "kind": kind, "ts": TS, "actor": actor, "target": "victim"}


@st.composite
def malformed(draw: st.DrawFn) -> tuple[bytes | None, bytes | None, str]:
    """(key, value, category) of one invalid input message."""
    actor = draw(ids)
    key = actor.encode()
    category = draw(
        st.sampled_from(
            [
                "bad_utf8",
                "not_json",
                "wrong_type",
                "huge_field",
                "oversize",
                "nested_junk",
                "deep_nesting",
                "unknown_kind",
                "far_ts",
                "huge_int",
                "missing_field",
                "key_mismatch",
                "empty",
            ]
        )
    )
    event = base(actor)
    value: bytes | None
    if category == "bad_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80"]))
        value = orjson.dumps(event).replace(b'"victim"', b'"vic' + bad + b'tim"')
    elif category == "not_json":
        value = draw(st.binary(min_size=1, max_size=60).filter(_not_json))
    elif category == "wrong_type":
        field, wrong = draw(wrong_types)
        event[field] = wrong
        value = orjson.dumps(event)
    elif category == "huge_field":
        field = draw(st.sampled_from(["id", "actor", "target", "tweet_id"]))
        event[field] = "x" * draw(st.integers(MAX_ID_LENGTH + 1, 4 * MAX_ID_LENGTH))
        value = orjson.dumps(event)
        key = str(event["actor"]).encode()
    elif category == "oversize":
        event["hashtags"] = ["y" * draw(st.integers(MAX_EVENT_BYTES, 2 * MAX_EVENT_BYTES))]
        value = orjson.dumps(event)
    elif category == "nested_junk":
        value = orjson.dumps(draw(junk.filter(lambda j: not isinstance(j, dict)) | _junk_object()))
    elif category == "deep_nesting":
        depth = draw(st.integers(600, 5_000))
        value = b"[" * depth + b"]" * depth
    elif category == "unknown_kind":
        event["kind"] = draw(st.text(max_size=12).filter(lambda k: k not in EVENT_KINDS))
        value = orjson.dumps(event)
    elif category == "far_ts":
        event["ts"] = draw(
            st.integers(-(2**63), MIN_TS_MS - 1)
            | st.integers(MAX_TS_MS + 1, 2**63 - 1)
            | st.integers(FAR_AHEAD_MS, MAX_TS_MS)  # valid by the schema: refused by the worker
        )
        value = orjson.dumps(event)
    elif category == "huge_int":
        value = orjson.dumps(event).replace(b'"ts":' + str(TS).encode(), b'"ts":' + b"9" * 30)
    elif category == "missing_field":
        event.pop(draw(st.sampled_from(["id", "kind", "ts", "actor", "target"])))
        value = orjson.dumps(event)
    elif category == "key_mismatch":
        key = draw(ids.filter(lambda k: k != actor)).encode()
        value = orjson.dumps(event)
    else:
        value = draw(st.sampled_from([b"", None]))
    return key, value, category


def _not_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return True
    return False


@st.composite
def _junk_object(draw: st.DrawFn) -> dict[str, Any]:
    """An object that has junk where the event's fields should be."""
    obj = draw(st.dictionaries(st.text(max_size=8), junk, max_size=5))
    obj.pop("kind", None)
    return obj


def is_refused(key: bytes | None, value: bytes | None) -> bool:
    """What the worker must do with this message, by the decoder: refuse it."""
    if not value:
        return True
    decoded = decode_json_event(value)
    if isinstance(decoded, Invalid):
        return True
    ahead = refuse_future(decoded, int(time.time() * 1000), FAR_AHEAD_ALLOWANCE_MS)
    return ahead is not None or (key is not None and key != decoded.actor.encode())


def generate(count: int) -> list[tuple[bytes | None, bytes | None, str]]:
    """`count` malformed messages; hypothesis checks each is refused by the decoder."""
    out: list[tuple[bytes | None, bytes | None, str]] = []

    @settings(
        max_examples=count // BATCH,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(malformed(), min_size=BATCH, max_size=BATCH))
    def collect(batch: list[tuple[bytes | None, bytes | None, str]]) -> None:
        for key, value, category in batch:
            assert is_refused(key, value), (category, key, value)
        out.extend(batch)

    collect()
    # Hypothesis may stop early once it has seen every distinct example: top up by cycling.
    while len(out) < count:
        out.extend(out[: count - len(out)])
    return out[:count]


def test_the_decoder_refuses_every_generated_malformed_input() -> None:
    messages = generate(2_000)
    categories = {category for _, _, category in messages}
    assert len(categories) == 13, categories


def test_an_event_a_thousand_years_ahead_is_refused_and_history_is_not() -> None:
    """Timestamps far in the future must not reach the model (they would move a partition's
    event-time clock centuries ahead and decay every score there)."""
    now = 1_795_000_000_000  # 2026-11-18
    day = DAY_MS
    year_3000 = Event("far", "retweet", 32_503_680_000_000, "a", "b")
    refused = refuse_future(year_3000, now, day)
    assert refused is not None and refused.reason == "ts_in_future"
    higgs = Event("old", "retweet", 1_341_100_972_000, "a", "b")  # 2012
    assert refuse_future(higgs, now, day) is None
    assert refuse_future(year_3000._replace(ts=now + day), now, day) is None
    assert refuse_future(year_3000._replace(ts=now + day + 1), now, day) is not None


async def _produce(
    bootstrap: str, deployment: Deployment, plan: list[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    """Sends the plan in order; returns each message's (topic, partition, offset)."""
    names = {f: getattr(deployment.topics, f) for f in TOPICS}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=4 * MAX_EVENT_BYTES,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(names[topic], key=key, value=value) for topic, key, value in plan
        ]
        results = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(r.topic, r.partition, r.offset) for r in results]


def test_malformed_inputs_are_dead_lettered_and_the_valid_ones_unaffected(
    deploy: Callable[..., Deployment], higgs: Path, model: Model, tmp_path: Path
) -> None:
    valid = higgs_events(VALID)
    bad = generate(MALFORMED)
    rng = random.Random(6)
    plan: list[tuple[str, bytes | None, bytes | None, bool]] = [
        (Topics().for_kind(e.kind), e.actor.encode(), orjson.dumps(event_to_dict(e)), False)
        for e in valid
    ]
    for key, value, _ in bad:
        plan.insert(rng.randrange(len(plan) + 1), (rng.choice(TOPICS), key, value, True))
    deployment = deploy(4, "at_least_once")
    worker = start_worker(deployment, tmp_path)
    positions = asyncio.run(
        _produce(deployment.bootstrap, deployment, [(t, k, v) for t, k, v, _ in plan])
    )
    wait_until_processed(deployment, timeout=600)
    assert worker.alive(), worker.tail()

    expected = {pos for pos, (*_, is_bad) in zip(positions, plan, strict=True) if is_bad}
    letters = [
        orjson.loads(v)
        for _, v, _ in read_topic(deployment.bootstrap, deployment.topics.dead_letter)
        if v is not None
    ]
    got = [(d["source"], d["partition"], d["position"]) for d in letters]
    assert len(got) == len(set(got)) == MALFORMED
    assert set(got) == expected
    assert all(d["reason"] and d["detail"] for d in letters)
    assert_outcome_exact(deployment, embedded(valid, model), model)

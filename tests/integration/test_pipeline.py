"""The Faust pipeline on the real broker agrees with the embedded engine, survives kill -9,
dead-letters bad input and forgets users."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.codec import decode_higgs_line
from pipeline.engine import Engine
from scoring import Event, Model, read_mass
from scoring.model import DAY_MS
from scoring.scale import SCALE_MIN, SCALE_SPAN, quantile_level
from tests.integration.pipeline_kit import (
    Deployment,
    produce_events,
    produce_raw,
    read_topic,
    read_users,
    wait_until_processed,
)

SLICE = 50_000


@pytest.fixture(scope="module")
def higgs_slice(higgs: Path) -> list[Event]:
    events = []
    with gzip.open(higgs, "rb") as lines:
        for number, line in enumerate(itertools.islice(lines, SLICE), 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event)
            events.append(event)
    return events


@pytest.fixture(scope="module")
def embedded(higgs_slice: list[Event], model: Model) -> Engine:
    engine = Engine(model)
    for event in higgs_slice:
        engine.process(event)
    return engine


def exact_score(z: float, model: Model) -> float:
    """The 1-100 score before rounding to 2 decimals (rounding alone can differ by 0.01)."""
    return SCALE_MIN + SCALE_SPAN * quantile_level(z, model.scale_knots)


def assert_same_as_embedded(deployment: Deployment, engine: Engine, model: Model) -> None:
    users = read_users(deployment)
    assert engine.now is not None
    at = engine.now
    assert set(users) == set(engine.states)
    for user, state in engine.states.items():
        stored = users[user].state
        expected = state.received.counts if state.received else None
        actual = stored.received.counts if stored.received else None
        assert actual == expected, user
        embedded_score = exact_score(read_mass(state, at, model).z, model)
        kafka_score = exact_score(read_mass(stored, at, model).z, model)
        assert abs(kafka_score - embedded_score) <= 0.01, (user, kafka_score, embedded_score)


def test_one_worker_matches_the_embedded_engine(
    deploy, higgs_slice: list[Event], embedded: Engine, model: Model, tmp_path: Path
) -> None:
    deployment = deploy(4, "exactly_once")
    deployment.start_worker(tmp_path)
    started = time.monotonic()
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, higgs_slice))
    wait_until_processed(deployment)
    print(f"one worker: {len(higgs_slice)} events in {time.monotonic() - started:.1f}s")
    assert_same_as_embedded(deployment, embedded, model)


def test_backfill_of_a_sparse_history_matches_the_embedded_engine(
    deploy, model: Model, tmp_path: Path
) -> None:
    """Eight days of 200 users, all on the broker before the worker starts: a fetch brings
    days of one partition at a time, more than the model's lateness horizon (open_days). The
    aligner must hand the steps the events in event-time order across partitions (before it,
    22 of 200 users scored up to 2 points off)."""
    from pipeline.synthetic import GeneratorConfig, generate
    from scoring import parse_event

    events = [parse_event(row) for row in generate(GeneratorConfig(users=200, days=8, seed=5))]
    stream = [event for event in events if isinstance(event, Event)]
    assert len(stream) == len(events)
    assert (stream[-1].ts - stream[0].ts) > (model.open_days + 2) * DAY_MS
    engine = Engine(model)
    for event in stream:
        engine.process(event)
    deployment = deploy(4, "at_least_once")
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, stream))
    deployment.start_worker(tmp_path)
    wait_until_processed(deployment)
    assert_same_as_embedded(deployment, engine, model)


def test_two_workers_on_four_partitions_match_the_embedded_engine(
    deploy, higgs_slice: list[Event], embedded: Engine, model: Model, tmp_path: Path
) -> None:
    deployment = deploy(4, "exactly_once")
    deployment.start_worker(tmp_path)
    deployment.start_worker(tmp_path)
    time.sleep(8)  # both join the group before the stream starts
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, higgs_slice))
    wait_until_processed(deployment)
    assert_same_as_embedded(deployment, embedded, model)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    deploy,
    higgs_slice: list[Event],
    embedded: Engine,
    model: Model,
    tmp_path: Path,
    guarantee: str,
) -> None:
    deployment = deploy(4, guarantee)
    worker = deployment.start_worker(tmp_path)
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, higgs_slice))
    deadline = time.monotonic() + 120
    while len(read_topic(deployment.bootstrap, deployment.changelog)) < 20_000:
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(1)
    worker.kill9()
    deployment.start_worker(tmp_path)
    wait_until_processed(deployment)
    assert_same_as_embedded(deployment, embedded, model)
    # Each user's last score-change event agrees with that user's final state.
    last: dict[str, float] = {}
    for key, value, _ in read_topic(deployment.bootstrap, deployment.topics.score_changes):
        if key is not None and value is not None:
            last[key.decode()] = orjson.loads(value)["score"]
    users = read_users(deployment)
    for user, score in last.items():
        state = users[user].state
        published = state.published
        assert published is not None and abs(published - score) < model.change_threshold, user


async def abort_a_transaction(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """`count` records written to `topic` in one transaction, then aborted: what a worker
    killed -9 leaves on the repartition topic (its open transaction, aborted by the next)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"{topic}-aborted-{partition}"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        for number in range(count):
            await producer.send(topic, key=b"x", value=b"aborted %d" % number, partition=partition)
        await producer.flush()
        await producer.abort_transaction()
    finally:
        await producer.stop()


def test_aborted_transactions_on_the_repartition_topic_do_not_stall_it(
    deploy: Callable[..., Deployment], model: Model, tmp_path: Path
) -> None:
    """Exactly-once: a repartition partition that starts with an aborted transaction (the
    dead worker's, before anyone committed it), and later ends with one. Neither hole is
    ever delivered; the committed offset must pass both (it stayed at 0, then before the
    second hole, and `wait_until_processed` timed out)."""
    from pipeline.synthetic import GeneratorConfig, generate
    from scoring import parse_event

    stream = [parse_event(row) for row in generate(GeneratorConfig(users=40, days=1, seed=3))]
    events = [event for event in stream if isinstance(event, Event)]
    engine = Engine(model)
    for event in events:
        engine.process(event)
    deployment = deploy(2, "exactly_once")
    engagements = deployment.topics.engagements
    asyncio.run(abort_a_transaction(deployment.bootstrap, engagements, 0, 400))
    deployment.start_worker(tmp_path)
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))
    wait_until_processed(deployment, timeout=90)
    asyncio.run(abort_a_transaction(deployment.bootstrap, engagements, 0, 300))
    wait_until_processed(deployment, timeout=60)
    assert_same_as_embedded(deployment, engine, model)


def test_malformed_messages_are_dead_lettered_and_valid_ones_kept(
    deploy, model: Model, tmp_path: Path
) -> None:
    deployment = deploy(2, "exactly_once")
    deployment.start_worker(tmp_path)
    topic = deployment.topics.retweets
    good = [
        (b"a", b'{"id":"1","kind":"retweet","ts":1735689600000,"actor":"a","target":"b"}'),
        (b"c", b'{"id":"2","kind":"retweet","ts":1735689601000,"actor":"c","target":"b"}'),
    ]
    bad = [
        (b"x", b"{not json"),
        (b"x", b'{"id":"3","kind":"retweet","ts":"soon","actor":"x","target":"b"}'),
        (b"x", b'{"id":"4","kind":"poke","ts":1735689600000,"actor":"x","target":"b"}'),
        (b"x", b'{"id":"5","kind":"mention","ts":1735689600000,"actor":"x"}'),
        (
            b"x",
            b'{"id":"6","kind":"tweet","ts":1735689600000,"actor":"x","hashtags":["'
            + b"y" * 70_000
            + b'"]}',
        ),
        (b"y", b'{"id":"7","kind":"retweet","ts":1735689600000,"actor":"x","target":"b"}'),
    ]
    asyncio.run(produce_raw(deployment.bootstrap, topic, [good[0], *bad, good[1]]))
    wait_until_processed(deployment)
    letters = [
        orjson.loads(v)
        for _, v, _ in read_topic(deployment.bootstrap, deployment.topics.dead_letter)
    ]
    assert sorted(d["reason"] for d in letters) == sorted(
        ["bad_json", "wrong_type", "unknown_kind", "missing_field", "oversize", "key_mismatch"]
    )
    for letter in letters:
        assert letter["source"] == topic and letter["partition"] is not None
        assert isinstance(letter["position"], int) and letter["detail"]
    users = read_users(deployment)
    received = users["b"].state.received
    assert received is not None and received.counts[0] == 2
    assert all(w.alive() for w in deployment.workers)


def test_forget_removes_the_user_and_emits_a_tombstone(
    deploy, model: Model, tmp_path: Path
) -> None:
    deployment = deploy(2, "exactly_once")
    deployment.start_worker(tmp_path)
    events = [Event(f"f{i}", "retweet", 1735689600000 + i, f"fan{i}", "star") for i in range(5)] + [
        Event("s1", "tweet", 1735689600100, "star")
    ]
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))
    wait_until_processed(deployment)
    stored = read_users(deployment)["star"].state  # as recovery reads it, from the changelog
    assert stored.history is not None and stored.history.changes  # issue 15: kept with the state
    forget = orjson.dumps({"kind": "forget", "user": "star", "ts": 1735689700000})
    asyncio.run(produce_raw(deployment.bootstrap, deployment.topics.control, [(b"star", forget)]))
    deadline = time.monotonic() + 60
    while "star" in read_users(deployment):
        assert time.monotonic() < deadline, deployment.workers[0].tail()
        time.sleep(1)
    changes = read_topic(deployment.bootstrap, deployment.topics.score_changes)
    star = [value for key, value, _ in changes if key == b"star"]
    assert star and star[-1] is None  # the tombstone comes last
    assert "fan0" in read_users(deployment)

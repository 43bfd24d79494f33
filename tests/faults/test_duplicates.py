"""The same input twice: a consumer rewound to the start, and a producer that sends every
message twice (a retrying producer without idempotence). Counted once either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from scoring import Event, Model
from tests.faults.conftest import FULL
from tests.faults.kit import (
    assert_outcome_exact,
    embedded,
    end_count,
    higgs_events,
    rewind,
    start_worker,
)
from tests.integration.pipeline_kit import Deployment, produce_events, wait_until_processed

EVENTS = 50_000 if FULL else 6_000


def test_a_rewound_consumer_replays_half_the_input_without_counting_it_twice(
    deploy: Callable[..., Deployment], higgs: Path, model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    engine = embedded(events, model)
    deployment = deploy(4, "at_least_once")
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))
    worker = start_worker(deployment, tmp_path)
    wait_until_processed(deployment)
    worker.stop()
    deployment.workers.remove(worker)  # stopped on purpose, not died
    topic = deployment.topics.score_changes
    published = end_count(deployment.bootstrap, topic, 4)
    rewind(deployment, deployment.topics.inputs, 0.5)
    start_worker(deployment, tmp_path)
    wait_until_processed(deployment)
    assert_outcome_exact(deployment, engine, model)
    # Every replayed message is recognised before it changes anything: no new score event.
    assert end_count(deployment.bootstrap, topic, 4) == published


def test_every_message_sent_twice_is_counted_once(
    deploy: Callable[..., Deployment], higgs: Path, model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    engine = embedded(events, model)
    deployment = deploy(4, "at_least_once")
    twice: list[Event] = [e for event in events for e in (event, event)]
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, twice))
    start_worker(deployment, tmp_path)
    wait_until_processed(deployment)
    assert_outcome_exact(deployment, engine, model)

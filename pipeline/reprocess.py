"""Reprocessing: a worker for a model version on a fresh state namespace, from a chosen start.

A shadow worker (`influence worker --model v2.toml --shadow`) runs under its own application
id, ``<app id>-shadow-<version>``, so its consumer group, users table, changelog and RocksDB
directory (``<data dir>/<app id>-shadow-<version>``) are its own;
it reads the live input and control topics and writes only to its own topics:
``<repartition>.shadow.<version>``, ``<score-changes>.shadow.<version>`` and
``<dead-letter>.shadow.<version>``. It never writes to a live topic (checked here).

A fresh consumer group starts at the beginning of the input topics (Faust's default offset
reset). With a start time (`--from`), each input partition that has no committed offset for
the group is moved, when it is assigned, to the first offset whose record timestamp is at or
after the start (Kafka's offsets-for-times; `influence produce` sets record timestamps to event
time). A partition with a committed offset resumes there: Faust seeks such partitions to their
committed offset after recovery, which comes after this seek, so restarting a reprocessing
worker never rewinds it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from pipeline.settings import Settings
from scoring import Model, load_model

log = logging.getLogger(__name__)

StartOffsets = dict[tuple[str, int], int]
"""(input topic, partition) → the offset to start from."""
_NOT_IN_TOPIC_NAMES = re.compile(r"[^A-Za-z0-9._-]")


def version_slug(model_version: str) -> str:
    """The model version as it can appear in a Kafka topic name ("1.0.0+ab12" → "1.0.0-ab12")."""
    return _NOT_IN_TOPIC_NAMES.sub("-", model_version)


def shadow_settings(settings: Settings, model: Model) -> Settings:
    """The settings of a shadow worker for `model`: its own app id and output topics."""
    slug = version_slug(model.model_version)
    live = settings.topics
    topics = replace(
        live,
        engagements=f"{live.engagements}.shadow.{slug}",
        forwarded=f"{live.forwarded}.shadow.{slug}",
        score_changes=f"{live.score_changes}.shadow.{slug}",
        dead_letter=f"{live.dead_letter}.shadow.{slug}",
    )
    written = {topics.engagements, topics.forwarded, topics.score_changes, topics.dead_letter}
    read_only = {
        *live.inputs,
        live.control,
        live.engagements,
        live.forwarded,
        live.score_changes,
        live.dead_letter,
    }
    if written & read_only:
        raise ValueError(f"a shadow worker would write to live topics {written & read_only}")
    return replace(settings, app_id=f"{settings.app_id}-shadow-{slug}", topics=topics, shadow=True)


def worker_settings(settings: Settings) -> Settings:
    """Settings of a reprocessing worker: a shadow's own app id (hence its own data directory,
    ``<data dir>/<app id>-shadow-<version>``) and topics. Nothing is created."""
    if not settings.shadow:
        return settings
    return shadow_settings(settings, load_model(settings.model_path))


def create_own_topics(settings: Settings) -> None:
    """A shadow worker's own topics (`worker_settings`), created before it starts; live
    workers use the topics `influence topics create` made."""
    if not settings.shadow:
        return
    from pipeline.topics_admin import run_create_topics

    run_create_topics(settings)


async def start_offsets(settings: Settings, start_ms: int) -> StartOffsets:
    """For each input partition, the first offset at or after `start_ms` (its end if none)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        *settings.topics.inputs,  # subscribed (no group): their metadata is fetched at start
        **settings.kafka_client_options(),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, partition)
            for topic in settings.topics.inputs
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            raise ValueError(f"input topics {settings.topics.inputs} not found on the broker")
        found = await consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {
        (tp.topic, tp.partition): found[tp].offset if found.get(tp) is not None else ends[tp]
        for tp in tps
    }


class SeekingConsumer(Protocol):
    async def seek(self, partition: Any, offset: int) -> None: ...


class StartSeeker:
    """Moves newly assigned input partitions to their start offsets, once per partition."""

    def __init__(self, offsets: StartOffsets) -> None:
        self.offsets = offsets
        self.done: set[tuple[str, int]] = set()

    async def on_assigned(self, consumer: SeekingConsumer, assigned: Iterable[Any]) -> list[Any]:
        """Seeks each assigned input partition not seeked before; returns those it moved."""
        moved = []
        for tp in sorted(assigned, key=lambda t: (t.topic, t.partition)):
            key = (tp.topic, tp.partition)
            offset = self.offsets.get(key)
            if offset is None or key in self.done:
                continue
            await consumer.seek(tp, offset)
            self.done.add(key)
            moved.append(tp)
        if moved:
            log.info("started %d input partitions from their start-time offsets", len(moved))
        return moved


def start_seeker(settings: Settings) -> StartSeeker | None:
    """A seeker for `settings.start_from_ms`, offsets looked up now (before the worker's loop
    starts, so the seek at assignment needs no network round trip and precedes recovery)."""
    if settings.start_from_ms is None:
        return None
    loop = asyncio.new_event_loop()
    try:
        offsets = loop.run_until_complete(start_offsets(settings, settings.start_from_ms))
    finally:
        loop.close()
    return StartSeeker(offsets)


def install_start_seek(app: Any, settings: Settings) -> StartSeeker | None:
    """Connects the start-time seek to the app's partition assignment (no-op without --from)."""
    seeker = start_seeker(settings)
    if seeker is None:
        return None

    async def on_assigned(sender: Any, assigned: Iterable[Any] = (), /, **_: Any) -> None:
        await seeker.on_assigned(app.consumer, assigned)

    app.on_partitions_assigned.connect(on_assigned)
    return seeker

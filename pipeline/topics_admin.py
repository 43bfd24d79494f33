"""`influence topics create`: the pipeline's topics with explicit partition counts, replicated
as the cluster allows (`replication_for`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from pipeline.settings import Settings

MAX_REPLICATION = 3
"""Replicas of a topic on a cluster of three brokers or more: one broker may be down (or
restarting) and two copies still hold every acknowledged write."""
SAFE_MIN_INSYNC = 2
"""`min.insync.replicas` of a fully replicated topic: an acks=all write needs two copies, so a
write acknowledged just before a broker dies is on another one."""


def replication_for(brokers: int) -> int:
    """Replication factor on a cluster of `brokers`: min(3, brokers)."""
    return max(1, min(MAX_REPLICATION, brokers))


def min_insync_for(replication: int) -> int:
    """`min.insync.replicas` for a replication factor: 2 with three replicas; 1 below (with
    two replicas, two in sync would stop every write while either broker is down)."""
    return SAFE_MIN_INSYNC if replication >= MAX_REPLICATION else 1


def topic_names(settings: Settings) -> list[str]:
    t = settings.topics
    return [*t.inputs, t.forwarded, t.control, t.engagements, t.score_changes, t.dead_letter]


async def _brokers(admin: Any) -> int:
    cluster = await admin.describe_cluster()
    return len(cluster["brokers"])


async def replication_of(settings: Settings) -> int:
    """The replication factor the pipeline's topics get: `settings.replication` when set,
    otherwise min(3, the cluster's brokers) (so one broker gets 1, the cluster 3)."""
    if settings.replication > 0:
        return settings.replication
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        return replication_for(await _brokers(admin))
    finally:
        await admin.close()


def with_replication(settings: Settings) -> Settings:
    """`settings` with its replication factor decided (`replication_of`): what a worker
    starts with, so Faust makes its changelog and internal topics with it too."""
    if settings.replication > 0:
        return settings
    return replace(settings, replication=asyncio.run(replication_of(settings)))


async def create_topics(settings: Settings) -> list[str]:
    """Creates the missing topics; returns the names it created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            replication = settings.replication or replication_for(await _brokers(admin))
            inputs = set(settings.topics.inputs)
            insync = {"min.insync.replicas": str(min_insync_for(replication))}
            retention = {"retention.ms": str(settings.input_retention_ms)}
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        settings.partitions,
                        replication,
                        topic_configs={**insync, **retention} if name in inputs else insync,
                    )
                    for name in missing
                ]
            )
        return missing
    finally:
        await admin.close()


def run_create_topics(settings: Settings) -> list[str]:
    return asyncio.run(create_topics(settings))

"""`influence topics create`: the pipeline's topics with explicit partition counts."""

from __future__ import annotations

import asyncio

from pipeline.settings import Settings


def topic_names(settings: Settings) -> list[str]:
    t = settings.topics
    return [*t.inputs, t.forwarded, t.control, t.engagements, t.score_changes, t.dead_letter]


async def create_topics(settings: Settings) -> list[str]:
    """Creates the missing topics; returns the names it created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            inputs = set(settings.topics.inputs)
            retention = {"retention.ms": str(settings.input_retention_ms)}
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        settings.partitions,
                        settings.replication,
                        topic_configs=retention if name in inputs else {},
                    )
                    for name in missing
                ]
            )
        return missing
    finally:
        await admin.close()


def run_create_topics(settings: Settings) -> list[str]:
    return asyncio.run(create_topics(settings))

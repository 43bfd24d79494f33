"""`pipeline.end_offsets` against a real broker: the end offsets that confirm a forwarder's
idle claim (docs/pipeline.md, "Producers and partitioners")."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.end_offsets import EndOffsetReader
from tests.integration.pipeline_kit import produce_raw


def test_end_offsets_follow_what_producers_append(deploy: Any) -> None:
    deployment = deploy(2)
    topic = deployment.topics.retweets
    reader = EndOffsetReader({"bootstrap_servers": deployment.bootstrap}, timeout_s=10.0)

    async def scenario() -> list[dict[tuple[str, int], int]]:
        seen = [await reader.read([(topic, 0), (topic, 1)])]
        await produce_raw(deployment.bootstrap, topic, [(b"k", b"x")] * 3)
        seen.append(await reader.read([(topic, 0), (topic, 1)]))
        await reader.stop()
        return seen

    before, after = asyncio.run(scenario())
    assert before == {(topic, 0): 0, (topic, 1): 0}
    assert sum(after.values()) == 3  # one key: all three in one partition
    assert sorted(after.values()) == [0, 3]
    assert reader.consumer is None

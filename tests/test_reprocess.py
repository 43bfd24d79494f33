"""Shadow settings and the start-time seek, without a broker."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from pipeline.cli import build_parser
from pipeline.reprocess import StartSeeker, shadow_settings, version_slug
from pipeline.settings import Settings, Topics
from scoring import Model


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[TP, int]] = []

    async def seek(self, partition: TP, offset: int) -> None:
        self.seeks.append((partition, offset))


def test_a_shadow_has_its_own_app_id_and_outputs_and_reads_the_live_inputs(model: Model) -> None:
    live = Settings(app_id="influence")
    shadow = shadow_settings(live, model)
    slug = version_slug(model.model_version)
    assert "+" not in slug and slug == model.model_version.replace("+", "-")
    assert shadow.shadow and shadow.app_id == f"influence-shadow-{slug}"
    assert shadow.topics.inputs == live.topics.inputs
    assert shadow.topics.control == live.topics.control
    assert shadow.topics.score_changes == f"score-changes.shadow.{slug}"
    assert shadow.topics.engagements == f"influence-engagements.shadow.{slug}"
    assert shadow.topics.dead_letter == f"influence-dead-letter.shadow.{slug}"
    written = {shadow.topics.score_changes, shadow.topics.engagements, shadow.topics.dead_letter}
    assert not written & {*live.topics.inputs, live.topics.score_changes}


def test_a_shadow_never_writes_a_live_topic(model: Model) -> None:
    slug = version_slug(model.model_version)
    # A live deployment whose score topic already has the shadow's name.
    odd = Settings(topics=Topics(score_changes="x", dead_letter=f"x.shadow.{slug}"))
    with pytest.raises(ValueError, match="live topics"):
        shadow_settings(odd, model)
    assert shadow_settings(Settings(topics=Topics(score_changes="y")), model)


def test_the_seek_moves_each_assigned_input_partition_once() -> None:
    seeker = StartSeeker({("tweets", 0): 5, ("tweets", 1): 0, ("mentions", 0): 12})
    consumer = FakeConsumer()
    assigned = {TP("tweets", 1), TP("tweets", 0), TP("influence-engagements", 0)}
    moved = asyncio.run(seeker.on_assigned(consumer, assigned))
    assert consumer.seeks == [(TP("tweets", 0), 5), (TP("tweets", 1), 0)]
    assert moved == [TP("tweets", 0), TP("tweets", 1)]
    # A later rebalance: only the newly seen input partition moves; the others keep their place.
    asyncio.run(seeker.on_assigned(consumer, assigned | {TP("mentions", 0)}))
    assert consumer.seeks[2:] == [(TP("mentions", 0), 12)]


def test_worker_options_reach_the_settings() -> None:
    from pipeline.commands import settings_of

    args = build_parser().parse_args(["worker", "--shadow", "--from", "2012-07-04T00:00Z"])
    settings = settings_of(args)
    assert settings.shadow and settings.start_from_ms == 1_341_360_000_000
    plain = settings_of(build_parser().parse_args(["worker"]))
    assert not plain.shadow and plain.start_from_ms is None

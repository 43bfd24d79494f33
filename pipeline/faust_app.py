"""The worker's agents, timers and rebalance hooks: how Faust feeds `faust_runner.Pipeline`.

Each agent takes batches from its stream and hands them to the pipeline; timers release what
waited for quiet partitions; the rebalance hooks reset the topology under the batch lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

import faust
from faust.streams import Stream
from faust.types import TP, EventT

from pipeline.consumer import AtLeastOnceConsumer
from pipeline.faust_runner import Pipeline
from pipeline.reprocess import install_start_seek
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def install_agents(app: faust.App, pipeline: Pipeline, settings: Settings) -> None:
    """The three agents, the three timers and the two rebalance hooks of a worker."""
    batch, within = settings.batch_max_events, settings.batch_within_s
    seeker = install_start_seek(app, settings)  # --from: where uncommitted inputs start
    engagements = pipeline.processing.engagements

    @app.agent(pipeline.inputs, name="act")
    async def act(stream: faust.StreamT[bytes]) -> None:
        inputs = pipeline.input_stream = cast(Stream[bytes], stream)
        async for events in inputs.noack_take(batch, within=within):
            await pipeline.run_inputs(cast(Sequence[EventT[Any]], events))

    @app.agent(pipeline.engagements, name="receive")
    async def receive(stream: faust.StreamT[bytes]) -> None:
        received = pipeline.engagement_stream = cast(Stream[bytes], stream)
        async for events in received.noack_take(batch, within=within):
            await pipeline.run_engagements(cast(Sequence[EventT[Any]], events))

    @app.agent(pipeline.control, name="control")
    async def control(stream: faust.StreamT[bytes]) -> None:
        async for events in cast(Stream[bytes], stream).take_events(batch, within=within):
            await pipeline.run_control(events)

    @app.timer(settings.release_interval_s)  # type: ignore[untyped-decorator]
    async def release_held_inputs() -> None:
        """Inputs held back by a late partition go once `align_max_wait_s` passed; progress
        that changed without an input (a partition found idle) is announced."""
        if pipeline.input_stream is not None:
            await pipeline.unless_stopping(lambda: pipeline.run_inputs([]))

    @app.timer(settings.release_interval_s)  # type: ignore[untyped-decorator]
    async def release_held_engagements() -> None:
        """Held engagements are released as messages arrive; when none arrive, this lets a
        merge that waited `merge_max_wait_s` for a silent source go on."""
        if pipeline.engagement_stream is not None and engagements.held:
            await pipeline.unless_stopping(lambda: pipeline.run_engagements([]))

    @app.timer(settings.held_report_interval_s)  # type: ignore[untyped-decorator]
    async def report_held() -> None:
        """Says which sources keep engagements waiting (a stalled source shows here), and
        while inputs are held, how far each forward partition lets them through."""
        for partition, merge in engagements.merges.items():
            if merge.held:
                log.info(
                    "partition %s holds %s engagements, waiting on sources %s (progress %s)",
                    partition,
                    merge.held,
                    merge.waiting_on(),
                    sorted(merge.progress.items()),
                )
        inputs = pipeline.processing.inputs
        if not len(inputs.aligner):
            return
        for partition, forward in sorted(inputs.forwarding.merges.items()):
            log.info(
                "forward partition %s lets inputs through up to %s (%s held; forwarders %s)",
                partition,
                forward.low_water(),
                forward.held,
                sorted(forward.progress.items()),
            )

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *_: Any, **__: Any) -> None:
        await pipeline.revoked()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, **__: Any) -> None:
        assigned: Iterable[TP] = args[0] if args else ()
        consumer = cast(AtLeastOnceConsumer, app.consumer)
        consumer.after_seek = pipeline.processing.drop_holds
        consumer.start_offsets = dict(seeker.offsets) if seeker is not None else {}
        await pipeline.assigned(list(assigned))

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, /, *_: Any, **__: Any) -> None:
        await pipeline.end_offsets.stop()

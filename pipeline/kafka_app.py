"""The Faust application: topics, the users table and the three agents.

- `act` reads the input topics (keyed by actor) and runs the actor step;
- `receive` reads the repartition topic (keyed by target) and runs the target step;
- `control` reads `forget` requests (keyed by user).

All topics have the same partition count, so partition p of every topic, and of the users
table's changelog, lives on the same worker: a user's whole state is local to one partition.
Faust and aiokafka are used only here and in `pipeline/worker.py`.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.types import EventT

from pipeline.codec import DeadLetter, decode_json_event, score_change_json
from pipeline.settings import Settings
from pipeline.steps import (
    DecayClock,
    Position,
    UserCache,
    actor_step,
    decode_engagement,
    encode_engagement,
    target_step,
)
from scoring import Invalid, Model, ScoreChange

log = logging.getLogger(__name__)


class SourcePartitionTransactions(TransactionManager):
    """Exactly-once with repartitioning: a message joins its *source* partition's transaction.

    Faust picks the transactional producer by the destination partition, which another worker
    may own (no producer for it here, or a fenced one there). Kafka Streams' rule is the right
    one: everything a task produces while processing partition p, whatever its destination,
    commits atomically with p's offsets. Buffered sends outside an event (changelog writes)
    keep Faust's routing: their destination partition is the source partition anyway.
    """

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = current_event()
        if event is None:
            return await super().send(topic, key, value, partition, timestamp, headers)
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        tid = f"{self.app.conf.id}-{group}-{source.partition}"
        destination = self.consumer.key_partition(topic, key, partition)
        return await self.producer.send(
            topic, key, value, destination, timestamp, headers, transactional_id=tid
        )


class Pipeline:
    """Topics, table and message handlers of one worker."""

    def __init__(self, app: faust.App, settings: Settings, model: Model) -> None:
        self.app = app
        self.settings = settings
        self.model = model
        names = settings.topics
        count = settings.partitions

        def topic(*topic_names: str) -> faust.TopicT:
            return app.topic(
                *topic_names, key_serializer="raw", value_serializer="raw", partitions=count
            )

        self.inputs = topic(*names.inputs)
        self.control = topic(names.control)
        self.engagements = topic(names.engagements)
        self.score_changes = topic(names.score_changes)
        self.dead_letters = topic(names.dead_letter)
        self.table = app.Table("users", default=None, partitions=count)
        self.input_index = {name: i for i, name in enumerate(names.inputs)}
        self.cache = UserCache(self.table)
        self.clocks: dict[int, DecayClock] = {}
        self.counters: dict[str, int] = {}

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def reset(self) -> None:
        """Partitions moved: decoded users and stream clocks may belong elsewhere now."""
        self.cache.clear()
        self.clocks.clear()

    async def publish(self, change: ScoreChange, cause_id: str, partition: int) -> None:
        self.clocks.setdefault(partition, DecayClock()).note(change, self.model)
        await self.score_changes.send(
            key=change.user.encode(),
            value=score_change_json(change, cause_id, self.model.model_version),
        )
        self.count("score_changes")

    async def dead_letter(self, invalid: Invalid, event: EventT[Any]) -> None:
        message = event.message
        letter = DeadLetter(
            invalid.reason,
            invalid.detail,
            message.value or b"",
            message.topic,
            message.offset,
            message.partition,
        )
        await self.dead_letters.send(key=message.key, value=letter.to_json())
        self.count(f"dead_letter:{invalid.reason}")

    async def on_input(self, event: EventT[Any]) -> None:
        message = event.message
        value = message.value
        decoded = (
            Invalid("oversize", "message exceeds the size limit")
            if value is not None and len(value) > self.settings.max_event_bytes
            else decode_json_event(value)
            if value is not None
            else Invalid("not_an_object", "empty message")
        )
        if isinstance(decoded, Invalid):
            await self.dead_letter(decoded, event)
            return
        if message.key is not None and message.key != decoded.actor.encode():
            # The actor's state lives in the partition of its key: a mis-keyed event would
            # corrupt another partition's state, so it is refused rather than guessed at.
            await self.dead_letter(Invalid("key_mismatch", "message key must be the actor"), event)
            return
        origin = Position(self.input_index[message.topic], message.partition, message.offset)
        out = actor_step(self.cache, decoded, origin, self.model)
        self.count("duplicates" if out.duplicate else f"events:{decoded.kind}")
        if out.engagement is not None:
            await self.engagements.send(
                key=out.engagement.target.encode(),
                value=encode_engagement(out.engagement, origin),
            )
        if out.stored is not None:
            self.cache.put(decoded.actor, out.stored)
        for change in out.changes:
            await self.publish(change, decoded.id, message.partition)

    async def on_engagement(self, event: EventT[Any]) -> None:
        message = event.message
        engagement, origin = decode_engagement(message.value or b"[]")
        clock = self.clocks.setdefault(message.partition, DecayClock())
        for change, day in clock.advance(engagement.ts, self.cache, self.model):
            await self.publish(change, f"decay:{day}", message.partition)
        out = target_step(self.cache, engagement, origin, self.model)
        if out.duplicate:
            self.count("duplicate_engagements")
        elif out.change is not None:
            await self.publish(out.change, engagement.id, message.partition)

    async def on_control(self, event: EventT[Any]) -> None:
        message = event.message
        try:
            request = orjson.loads(message.value or b"")
        except orjson.JSONDecodeError as exc:
            await self.dead_letter(Invalid("bad_json", str(exc)[:200]), event)
            return
        user = request.get("user") if isinstance(request, dict) else None
        if not isinstance(request, dict) or request.get("kind") != "forget":
            await self.dead_letter(Invalid("unknown_kind", "control kind must be forget"), event)
            return
        if not isinstance(user, str) or not user:
            await self.dead_letter(Invalid("missing_field", "forget needs a user"), event)
            return
        if message.key is not None and message.key != user.encode():
            await self.dead_letter(Invalid("key_mismatch", "message key must be the user"), event)
            return
        self.cache.forget(user)
        for clock in self.clocks.values():
            clock.watch.pop(user, None)
        await self.score_changes.send(key=user.encode(), value=None)
        self.count("forgotten")


def create_app(settings: Settings, model: Model) -> faust.App:
    """The worker's Faust app, built from settings (nothing happens at import time)."""
    brokers = [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")]
    app = faust.App(
        settings.app_id,
        broker=brokers,
        store=settings.store,
        datadir=settings.data_dir,
        processing_guarantee=settings.processing_guarantee,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_credentials=_credentials(settings),
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    app.transport.TransactionManager = SourcePartitionTransactions  # type: ignore[misc]
    pipeline = Pipeline(app, settings, model)
    app.influence = pipeline  # type: ignore[attr-defined]

    @app.agent(pipeline.inputs, name="act")
    async def act(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await pipeline.on_input(event)

    @app.agent(pipeline.engagements, name="receive")
    async def receive(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await pipeline.on_engagement(event)

    @app.agent(pipeline.control, name="control")
    async def control(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await pipeline.on_control(event)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *_: Any, **__: Any) -> None:
        pipeline.reset()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *_: Any, **__: Any) -> None:
        pipeline.reset()

    return app


def _credentials(settings: Settings) -> Any:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username or "",
            password=settings.sasl_password or "",
            mechanism=settings.sasl_mechanism,
            ssl_context=None,
        )
    if settings.ssl_cafile:
        import ssl

        return ssl.create_default_context(cafile=settings.ssl_cafile)
    return None

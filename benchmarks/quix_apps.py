"""The Quix Streams applications of the peer benchmark (`benchmarks.peer_quix`), each run as a
child process: the app as a user writes it, the same app tuned as a Quix Streams expert would
write it, and a stateless app that only counts the input messages (Quix's own floor).

All three read the three input topics (keyed by actor) as one dataframe (`concat`), as raw
bytes, at-least-once. The two scoring apps then run the actor step in a stateful `apply`
(state per actor, in RocksDB with a changelog topic), `group_by` the target (Quix's
repartition topic, one message per engagement) and the target step in a second stateful
`apply`, and send the score-change events to an output topic.

As a user writes it (`written`): the Python core's functions (`scoring.apply_action`,
`apply_engagement`, `detect_change`) on a user state kept as a JSON row under one state key:
every message parses the row (`state_from_row` over Quix's orjson `loads`) and writes it back
(`state_to_row`, then Quix's `dumps`), so a user with thousands of engagers costs tens of
kilobytes of JSON per message.

Tuned (`tuned`): the state layout of our worker. The partition's users stay decoded between
messages in the worker's own user cache (`pipeline.native_steps.NativeUserCache`, the
compiled core, or `pipeline.steps.UserCache`, the Python core: `--core`), read from the Quix
state the first time a user is seen, and each changed user is written back once per
checkpoint as the bytes our worker stores (`State.set_bytes`: Quix serialises nothing), by a
sink whose `flush` Quix calls as the checkpoint commits (`--write message`: after every
message instead), as our worker writes a changed user once per batch. The steps are the
worker's, with its redelivery guard (the origin of each engagement travels with it). Quix
keeps one store per stateful step, so, as in the app as written, a user's actor side and
target side are two states (the score events are those of the target side).

    python -m benchmarks.quix_apps written|tuned|count|count-separate BOOTSTRAP GROUP OUTPUT
        STATE_DIR TOTAL TOPIC... [--core native|python] [--store rocksdb|memory]
        [--poll SECONDS] [--write checkpoint|message]

(TOTAL: the messages a counting app counts before it exits; OUTPUT: the scoring apps' topic;
--poll: Quix's `consumer_poll_timeout`, default 1 s; --write: when the tuned app writes a
changed user to its state, at the checkpoint or after each message.)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from scoring import Model

PARTITIONS = 4
USER = "user"
"""The one state key of a message key's state (the user's row)."""
COMMIT_INTERVAL_S = 5.0
"""Quix's default, kept for both scoring apps: state and offsets are committed together at each
checkpoint, and a longer interval only trades redelivery on a crash for fewer flushes (our
worker commits offsets every 2.8 s, Faust's default, and writes state once per batch)."""


def _app(server: str, group: str, state_dir: str, **settings: Any) -> Any:
    from quixstreams import Application

    return Application(
        broker_address=server,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",  # as our worker (INFLUENCE guarantee default)
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=state_dir,
        loglevel="WARNING",
        **settings,
    )


def _inputs(app: Any, inputs: list[str]) -> Any:
    from quixstreams.models import TopicConfig

    config = TopicConfig(num_partitions=PARTITIONS, replication_factor=1)
    frames = [
        app.dataframe(
            app.topic(name, key_deserializer="bytes", value_deserializer="bytes", config=config)
        )
        for name in inputs
    ]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    return sdf


def _output(app: Any, sdf: Any, output: str) -> None:
    from quixstreams.models import TopicConfig

    config = TopicConfig(num_partitions=PARTITIONS, replication_factor=1)
    sdf.to_topic(app.topic(output, value_serializer="bytes", key_serializer="str", config=config))


Steps = tuple[Callable[[bytes, Any], Any], Callable[[Any, Any], bytes | None]]
"""A scoring app's two stateful functions: (input value, state) → engagement or None, and
(engagement, state) → score event or None."""


def written_steps(model: Model) -> Steps:
    """The steps as a user writes them: the Python core on a JSON row per message."""
    from pipeline.codec import decode_json_event, score_change_json
    from scoring import (
        Engagement,
        Event,
        apply_action,
        apply_engagement,
        detect_change,
        new_user_state,
    )
    from scoring.state import state_from_row, state_to_row

    def act(value: bytes, state: Any) -> list[Any] | None:
        event = decode_json_event(value)
        if not isinstance(event, Event):
            return None
        row = state.get(USER)
        user = state_from_row(row) if row is not None else new_user_state(event.ts)
        engagement = apply_action(user, event, model).engagement
        state.set(USER, state_to_row(user))
        return list(engagement) if engagement is not None else None

    def receive(value: list[Any], state: Any) -> bytes | None:
        engagement = Engagement._make([*value[:-1], tuple(value[-1])])
        row = state.get(USER)
        user = state_from_row(row) if row is not None else new_user_state(engagement.ts)
        apply_engagement(user, engagement, model)
        change = detect_change(engagement.target, user, user.last_ts, model, "engagement")
        state.set(USER, state_to_row(user))
        if change is None:
            return None
        return score_change_json(change, engagement.id, model.model_version)

    return act, receive


class States:
    """The users table our user caches read and write (`get`, item assignment) over Quix
    states: each user's is the state Quix passed with the last message keyed by that user in
    the current checkpoint (the actor's for input messages, the target's after `group_by`).
    A step reads only the message key's user; the cache writes its changed users back either
    at once or at the checkpoint, while their states' transaction is still open."""

    def __init__(self) -> None:
        self.states: dict[bytes, Any] = {}

    def bind(self, state: Any, key: str) -> None:
        self.states[key.encode()] = state

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        value: bytes | None = self.states[key].get_bytes(USER, default)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.states[key].set_bytes(USER, value)


class TunedSteps:
    """The steps with our worker's state layout, user caches and steps, on `core`; `context()`
    is the message's (`quixstreams.message_context`: topic, partition, offset). `at`
    "checkpoint": changed users are written to their Quix states by `checkpoint()`, which
    the app calls as each checkpoint commits (`CheckpointWrites`), so a user touched a
    thousand times in a checkpoint is encoded once, as our worker encodes it once a batch;
    "message": each message's user is written back after the message."""

    def __init__(
        self,
        model: Model,
        core: str,
        inputs: list[str],
        context: Callable[[], Any],
        at: str = "checkpoint",
    ) -> None:
        from pipeline.codec import decode_json_event, score_change_json
        from pipeline.native_steps import NativeUserCache
        from pipeline.steps import Position, UserCache
        from scoring import Engagement, Event

        self.model, self.core, self.context = model, core, context
        self.index = {name: i for i, name in enumerate(inputs)}
        self.tables = States(), States()
        self.caches: tuple[Any, Any] = (
            (NativeUserCache(self.tables[0], model), NativeUserCache(self.tables[1], model))  # type: ignore[arg-type]
            if core == "native"
            else (UserCache(self.tables[0]), UserCache(self.tables[1]))  # type: ignore[arg-type]
        )
        self.each = at == "message"
        self._decode, self._encode = decode_json_event, score_change_json
        self._position, self._engagement, self._event = Position, Engagement, Event

    def write(self, side: int) -> None:
        """The side's changed users, into their Quix states."""
        cache, table = self.caches[side], self.tables[side]
        if self.core == "native":
            cache.flush_bounds(table)
        else:
            cache.flush(table)

    def checkpoint(self) -> None:
        """Every changed user into its state; then the states are the committed transaction's
        and are forgotten (the decoded users stay)."""
        for side in (0, 1):
            self.write(side)
            self.tables[side].states.clear()

    def act(self, value: bytes, state: Any) -> list[Any] | None:
        event = self._decode(value)
        if not isinstance(event, self._event):
            return None
        message = self.context()
        origin = self._position(self.index[message.topic], message.partition, message.offset)
        self.tables[0].bind(state, event.actor)
        engagement = self.caches[0].actor(event, origin, self.model).engagement
        if self.each:
            self.write(0)
        if engagement is None:
            return None
        return [*engagement, origin.topic, origin.partition, origin.offset]

    def receive(self, value: list[Any], state: Any) -> bytes | None:
        *fields, topic, partition, offset = value
        fields[-1] = tuple(fields[-1])  # ref_hashtags
        engagement = self._engagement(*fields)
        self.tables[1].bind(state, engagement.target)
        origin = self._position(topic, partition, offset)
        change = self.caches[1].target(engagement, origin, self.model).change
        if self.each:
            self.write(1)
        if change is None:
            return None
        return self._encode(change, engagement.id, self.model.model_version)


def checkpoint_writes(steps: TunedSteps) -> Any:
    """A sink that receives nothing and, as each checkpoint commits (Quix flushes sinks before
    it produces the changelogs and commits the state transactions), writes the changed users
    into their states: Quix's public hook at the commit."""
    from quixstreams.sinks import BaseSink

    class CheckpointWrites(BaseSink):
        def add(self, *args: Any, **kwargs: Any) -> None:
            pass

        def flush(self) -> None:
            steps.checkpoint()

    return CheckpointWrites()


def scoring_app(
    server: str,
    group: str,
    inputs: list[str],
    output: str,
    state_dir: str,
    steps: Steps | TunedSteps,
    store: str = "rocksdb",
    poll_s: float = 1.0,
) -> Any:
    """A scoring app running `steps` (not started); `store` "memory": Quix's in-memory store
    (with its changelog), as the benchmark's worker keeps its table (INFLUENCE_STORE=memory://),
    instead of RocksDB."""
    from quixstreams.state.memory import MemoryStore

    app = _app(server, group, state_dir, consumer_poll_timeout=poll_s)
    act, receive = (steps.act, steps.receive) if isinstance(steps, TunedSteps) else steps
    sdf = _inputs(app, inputs)
    if store == "memory":
        sdf.register_store(store_type=MemoryStore)
    sdf = sdf.apply(act, stateful=True).filter(lambda engagement: engagement is not None)
    sdf = sdf.group_by(lambda engagement: engagement[4], name="target")
    if store == "memory":
        sdf.register_store(store_type=MemoryStore)
    sdf = sdf.apply(receive, stateful=True).filter(lambda change: change is not None)
    _output(app, sdf, output)
    if isinstance(steps, TunedSteps) and not steps.each:
        sdf.sink(checkpoint_writes(steps))
    return app


def count(
    server: str,
    group: str,
    inputs: list[str],
    state_dir: str,
    total: int,
    concat: bool = True,
    poll_s: float = 1.0,
) -> Any:
    """A stateless app that only counts the input messages, then prints one JSON line (messages,
    seconds from the first message to the last, the process's CPU seconds) and exits. With
    `concat` the topics are one dataframe, as in the scoring apps, which makes Quix read them
    aligned by timestamp (buffered); without, one dataframe per topic, read as they come."""
    app = _app(server, group, state_dir, use_changelog_topics=False, consumer_poll_timeout=poll_s)
    seen = {"count": 0, "first": 0.0}

    def counted(_value: bytes) -> None:
        if seen["count"] == 0:
            seen["first"] = time.perf_counter()
        seen["count"] += 1
        if seen["count"] >= total:
            seconds = time.perf_counter() - seen["first"]
            cpu = time.process_time()  # the whole process's, start-up included
            line = {"messages": seen["count"], "seconds": seconds, "cpu_seconds": cpu}
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
            sys.stdout.flush()
            os._exit(0)  # measured: no need for Quix's orderly stop

    if concat:
        _inputs(app, inputs).update(counted)
    else:
        for name in inputs:
            _inputs(app, [name]).update(counted)
    return app


def main(argv: list[str]) -> int:
    options = {"--core": "native", "--store": "rocksdb", "--poll": "1.0", "--write": "checkpoint"}
    for name in options:
        if name in argv:
            at = argv.index(name)
            options[name] = argv[at + 1]
            argv = argv[:at] + argv[at + 2 :]
    if len(argv) < 7 or argv[0] not in ("written", "tuned", "count", "count-separate"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, server, group, output, state_dir, total, *inputs = argv
    if kind.startswith("count"):
        poll_s = float(options["--poll"])
        app = count(server, group, inputs, state_dir, int(total), kind == "count", poll_s)
    else:
        from quixstreams import message_context

        from scoring import load_model

        model = load_model()
        steps = (
            written_steps(model)
            if kind == "written"
            else TunedSteps(model, options["--core"], inputs, message_context, options["--write"])
        )
        store, poll_s = options["--store"], float(options["--poll"])
        app = scoring_app(server, group, inputs, output, state_dir, steps, store, poll_s)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

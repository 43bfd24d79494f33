"""The Quix Streams peer's steps (`benchmarks.quix_apps`) without Quix or a broker: the tuned
app (our worker's user caches on either core, rows written as bytes) must send the same score
events as the app as a user writes it (the Python core on JSON rows), so the benchmark compares
two ways of doing the same work; and the tuned app's redelivery guard must skip a redelivered
input, as our worker's does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from benchmarks import quix_apps
from benchmarks.harness import event_message
from pipeline.codec import decode_json_event
from pipeline.synthetic.config import GeneratorConfig
from pipeline.synthetic.stream import generate
from scoring import Event, Model, load_model

INPUTS = ["tweets", "retweets", "mentions"]


class FakeState:
    """One message key's Quix state: `get`/`set` through orjson, as Quix's default
    serialisation, and `get_bytes`/`set_bytes` raw."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, key: str, default: Any = None) -> Any:
        data = self.values.get(key)
        return orjson.loads(data) if data is not None else default

    def set(self, key: str, value: Any) -> None:
        self.values[key] = orjson.dumps(value)

    def get_bytes(self, key: str, default: bytes | None = None) -> bytes | None:
        return self.values.get(key, default)

    def set_bytes(self, key: str, value: bytes) -> None:
        assert isinstance(value, bytes)
        self.values[key] = value


@dataclass
class Context:
    topic: str = ""
    partition: int = 0
    offset: int = 0


class Stores:
    """A stateful step's store: a state per message key."""

    def __init__(self) -> None:
        self.states: dict[bytes, FakeState] = {}

    def __call__(self, key: bytes) -> FakeState:
        return self.states.setdefault(key, FakeState())


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def messages() -> list[Any]:
    config = GeneratorConfig(users=300, days=20, scenarios=("ring", "party"))
    events = [decode_json_event(orjson.dumps(e)) for e in itertools.islice(generate(config), 3_000)]
    return [event_message(e) for e in events if isinstance(e, Event)]


def score_events(
    steps: quix_apps.Steps | quix_apps.TunedSteps,
    messages: list[Any],
    context: Context,
    stores: tuple[Stores, Stores] | None = None,
    every: int = 700,
    offsets: dict[str, int] | None = None,
) -> list[bytes]:
    """What the app sends: every input through the actor step (a state per actor), each
    engagement through `group_by` (JSON, as Quix's repartition topic) to the target step; a
    tuned app's checkpoint every `every` messages of each side, and at the end."""
    tuned = isinstance(steps, quix_apps.TunedSteps)
    act, receive = (steps.act, steps.receive) if tuned else steps  # type: ignore[union-attr]
    actors, targets = stores or (Stores(), Stores())
    offsets = dict.fromkeys(INPUTS, 0) if offsets is None else offsets
    engagements = []
    for n, message in enumerate(messages, 1):
        context.topic, context.offset = message.topic, offsets[message.topic]
        offsets[message.topic] += 1
        engagement = act(message.value, actors(message.key))
        if engagement is not None:
            engagements.append(orjson.loads(orjson.dumps(engagement)))
        if tuned and n % every == 0:
            steps.checkpoint()  # type: ignore[union-attr]
    out = []
    for n, engagement in enumerate(engagements, 1):
        event = receive(engagement, targets(engagement[4].encode()))
        if event is not None:
            out.append(event)
        if tuned and n % every == 0:
            steps.checkpoint()  # type: ignore[union-attr]
    if tuned:
        steps.checkpoint()  # type: ignore[union-attr]
    return out


def rows(stores: tuple[Stores, Stores]) -> list[dict[bytes, bytes | None]]:
    return [{k: s.values.get(quix_apps.USER) for k, s in side.states.items()} for side in stores]


@pytest.mark.parametrize("at", ["checkpoint", "message"])
@pytest.mark.parametrize("core", ["python", "native"])
def test_tuned_sends_what_the_written_app_sends(
    model: Model, messages: list[Any], core: str, at: str
) -> None:
    if core == "native":
        pytest.importorskip("scoring._native")
    written = score_events(quix_apps.written_steps(model), messages, Context())
    context = Context()
    tuned = score_events(
        quix_apps.TunedSteps(model, core, INPUTS, lambda: context, at), messages, context
    )
    assert len(written) > 100
    assert tuned == written


@pytest.mark.parametrize("core", ["python", "native"])
def test_checkpoint_writes_store_what_each_message_writes(
    model: Model, messages: list[Any], core: str
) -> None:
    """Written at checkpoints, the stored rows end as written after every message; and a new
    app (decoded users lost) goes on from them with the same score events."""
    if core == "native":
        pytest.importorskip("scoring._native")
    half = len(messages) // 2
    stored = {}
    for at in ("message", "checkpoint"):
        context, stores, offsets = Context(), (Stores(), Stores()), dict.fromkeys(INPUTS, 0)
        first = score_events(
            quix_apps.TunedSteps(model, core, INPUTS, lambda c=context: c, at),
            messages[:half],
            context,
            stores,
            offsets=offsets,
        )
        stored[at] = rows(stores)
        again = quix_apps.TunedSteps(model, core, INPUTS, lambda c=context: c, at)
        rest = score_events(again, messages[half:], context, stores, offsets=offsets)
        stored[at + " end"] = rows(stores)
        assert first + rest == score_events(quix_apps.written_steps(model), messages, Context())
    assert stored["checkpoint"] == stored["message"]
    assert stored["checkpoint end"] == stored["message end"]


@pytest.mark.parametrize("core", ["python", "native"])
def test_tuned_skips_a_redelivered_input(model: Model, messages: list[Any], core: str) -> None:
    if core == "native":
        pytest.importorskip("scoring._native")
    context = Context()
    act = quix_apps.TunedSteps(model, core, INPUTS, lambda: context).act
    actors = Stores()
    engaging = [m for m in messages if m.topic == "retweets"][:5]
    for offset, message in enumerate(engaging):
        context.topic, context.offset = message.topic, offset
        assert act(message.value, actors(message.key)) is not None
    again = engaging[-1]
    context.topic, context.offset = again.topic, len(engaging) - 1
    assert act(again.value, actors(again.key)) is None  # the guard: already applied

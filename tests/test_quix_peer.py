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


def score_events(steps: quix_apps.Steps, messages: list[Any], context: Context) -> list[bytes]:
    """What the app sends: every input through the actor step (a state per actor), each
    engagement through `group_by` (JSON, as Quix's repartition topic) to the target step."""
    act, receive = steps
    actors, targets = Stores(), Stores()
    offsets = dict.fromkeys(INPUTS, 0)
    engagements = []
    for message in messages:
        context.topic, context.offset = message.topic, offsets[message.topic]
        offsets[message.topic] += 1
        engagement = act(message.value, actors(message.key))
        if engagement is not None:
            engagements.append(orjson.loads(orjson.dumps(engagement)))
    out = []
    for engagement in engagements:
        event = receive(engagement, targets(engagement[4].encode()))
        if event is not None:
            out.append(event)
    return out


@pytest.mark.parametrize("core", ["python", "native"])
def test_tuned_sends_what_the_written_app_sends(
    model: Model, messages: list[Any], core: str
) -> None:
    if core == "native":
        pytest.importorskip("scoring._native")
    written = score_events(quix_apps.written_steps(model), messages, Context())
    context = Context()
    tuned = score_events(
        quix_apps.tuned_steps(model, core, INPUTS, lambda: context), messages, context
    )
    assert len(written) > 100
    assert tuned == written


@pytest.mark.parametrize("core", ["python", "native"])
def test_tuned_skips_a_redelivered_input(model: Model, messages: list[Any], core: str) -> None:
    if core == "native":
        pytest.importorskip("scoring._native")
    context = Context()
    act, _ = quix_apps.tuned_steps(model, core, INPUTS, lambda: context)
    actors = Stores()
    engaging = [m for m in messages if m.topic == "retweets"][:5]
    for offset, message in enumerate(engaging):
        context.topic, context.offset = message.topic, offset
        assert act(message.value, actors(message.key)) is not None
    again = engaging[-1]
    context.topic, context.offset = again.topic, len(engaging) - 1
    assert act(again.value, actors(again.key)) is None  # the guard: already applied

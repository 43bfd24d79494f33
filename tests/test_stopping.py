"""A timer's work while the worker stops (`Pipeline.unless_stopping`).

A SIGTERM under backlog once ended with Faust logging the app as crashed: the
engagement-release timer fired as the stop began and reached the producer after Faust had
stopped it (`NotReady('Producer service not yet started')`). A clean-clone CI run later
met the other shape of it: the input-release timer's send reached aiokafka's producer while
it closed (`ProducerSendError('Error while sending: ProducerClosed()')`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.exceptions import NotReady, ProducerSendError

from pipeline.kafka_app import Pipeline


def pipeline(stopping: bool) -> Pipeline:
    worker = object.__new__(Pipeline)
    worker.app = SimpleNamespace(should_stop=stopping)  # type: ignore[assignment]
    return worker


STOPPED_PRODUCER = [
    NotReady("Producer service not yet started"),
    ProducerSendError("Error while sending: ProducerClosed()"),
]


@pytest.mark.parametrize("error", STOPPED_PRODUCER, ids=type)
def test_a_timer_that_meets_a_stopped_producer_while_stopping_hands_its_batch_off(
    error: Exception,
) -> None:
    ran: list[str] = []

    async def release() -> None:
        ran.append("release")
        worker.app.should_stop = True  # type: ignore[misc]  # the stop begins meanwhile
        raise error

    worker = pipeline(stopping=False)
    asyncio.run(worker.unless_stopping(release))  # no crash: left unacknowledged
    assert ran == ["release"]
    asyncio.run(worker.unless_stopping(release))  # stopping: not even started
    assert ran == ["release"]


@pytest.mark.parametrize("error", STOPPED_PRODUCER, ids=type)
def test_a_stopped_producer_outside_a_stop_is_still_an_error(error: Exception) -> None:
    async def release() -> None:
        raise error

    with pytest.raises(type(error)):
        asyncio.run(pipeline(stopping=False).unless_stopping(release))

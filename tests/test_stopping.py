"""A timer's work while the worker stops (`Pipeline.unless_stopping`).

A SIGTERM under backlog once ended with Faust logging the app as crashed: the
engagement-release timer fired as the stop began and reached the producer after Faust had
stopped it (`NotReady('Producer service not yet started')`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.exceptions import NotReady

from pipeline.kafka_app import Pipeline


def pipeline(stopping: bool) -> Pipeline:
    worker = object.__new__(Pipeline)
    worker.app = SimpleNamespace(should_stop=stopping)  # type: ignore[assignment]
    return worker


def test_a_timer_that_meets_a_stopped_producer_while_stopping_hands_its_batch_off() -> None:
    ran: list[str] = []

    async def release() -> None:
        ran.append("release")
        worker.app.should_stop = True  # type: ignore[misc]  # the stop begins meanwhile
        raise NotReady("Producer service not yet started")

    worker = pipeline(stopping=False)
    asyncio.run(worker.unless_stopping(release))  # no crash: left unacknowledged
    assert ran == ["release"]
    asyncio.run(worker.unless_stopping(release))  # stopping: not even started
    assert ran == ["release"]


def test_a_stopped_producer_outside_a_stop_is_still_an_error() -> None:
    async def release() -> None:
        raise NotReady("Producer service not yet started")

    with pytest.raises(NotReady):
        asyncio.run(pipeline(stopping=False).unless_stopping(release))

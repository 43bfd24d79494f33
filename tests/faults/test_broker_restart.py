"""The broker stopped and started again in the middle of the stream.

The test owns its broker: a second single-node Kafka started by deploy/kafka/kafka.sh on free
ports with its own run dir, so stopping it never disturbs the session's shared broker (in CI
the session starts that one itself; during development other sessions use it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scoring import Model
from tests.faults.conftest import FULL
from tests.faults.kit import (
    assert_outcome_exact,
    embedded,
    end_count,
    higgs_events,
    start_worker,
    wait_for,
)
from tests.integration.conftest import KAFKA_SH
from tests.integration.pipeline_kit import (
    new_deployment,
    produce_events,
    wait_until_processed,
)

EVENTS = 100_000 if FULL else 12_000
DOWN_S = 8.0
"""How long the broker stays down: longer than the worker's 6 s session timeout."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnBroker:
    """A broker of this test only: its own ports and run dir."""

    run_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kafka_sh(self, command: str) -> None:
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_RUN_DIR": str(self.run_dir),
            "KAFKA_HEAP_OPTS": "-Xmx384m -Xms128m",
        }
        done = subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"kafka.sh {command}:\n{done.stdout}{done.stderr}"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path / "kafka", _free_port(), _free_port())
    broker.kafka_sh("start")
    try:
        yield broker
    finally:
        broker.kafka_sh("stop")


def test_broker_stopped_and_restarted_mid_stream(
    own_broker: OwnBroker, higgs: Path, model: Model, tmp_path: Path
) -> None:
    events = higgs_events(EVENTS)
    half = len(events) // 2
    engine = embedded(events, model)
    deployment = new_deployment(own_broker.bootstrap, "f")
    try:
        asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[:half]))
        worker = start_worker(deployment, tmp_path)
        first_half = embedded(events[:half], model).stats.score_changes
        topic = deployment.topics.score_changes
        wait_for(lambda: end_count(own_broker.bootstrap, topic, 4) >= first_half // 3, [worker])
        own_broker.kafka_sh("stop")
        time.sleep(DOWN_S)
        own_broker.kafka_sh("start")
        asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[half:]))
        wait_until_processed(deployment, timeout=900 if FULL else 400)
        assert worker.alive(), worker.tail()
        assert_outcome_exact(deployment, engine, model)
    finally:
        deployment.stop_all()

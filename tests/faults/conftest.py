"""Fault tests: real workers on a real broker, broken on purpose.

Every test here is marked ``faults``; those that need a broker are marked ``kafka`` too, like
tests/integration. The long variants (the 200,000-event kill run) run only with
``INFLUENCE_FULL_FAULTS=1``; the default run uses smaller streams that keep the faults under
a few minutes of CI time. See docs/reliability.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The session broker and the `deploy` fixture, shared with tests/integration.
from tests.integration.conftest import deploy, kafka_bootstrap  # noqa: F401

if TYPE_CHECKING:
    from tests.faults.cluster_kit import Cluster

HERE = Path(__file__).resolve().parent
FULL = os.environ.get("INFLUENCE_FULL_FAULTS", "") == "1"
"""The sizes the issue asks for (200,000 events); otherwise the CI sizes."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (tests/faults)")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The three-node cluster (`kafka.sh --brokers 3`, ports 19092-19094), started for the
    session; a cluster that cannot start fails the tests. A cluster this session started is
    stopped and its run dir deleted at the end; one that was running already is left running
    (its topics deleted)."""
    from tests.faults.cluster_kit import Cluster, kafka_sh, output
    from tests.integration.pipeline_kit import delete_deployed_topics

    started = kafka_sh("start")
    if started.returncode != 0:
        pytest.fail(
            f"kafka.sh --brokers 3 start failed (exit {started.returncode}):\n{output(started)}",
            pytrace=False,
        )
    ours = "starting Apache Kafka" in started.stdout
    try:
        yield Cluster(started.stdout.strip().splitlines()[-1])
    finally:
        print(f"deleted {delete_deployed_topics()} topics the tests made")
        if ours:
            reset = kafka_sh("reset", timeout=300)
            if reset.returncode != 0:
                print(f"kafka.sh --brokers 3 reset failed:\n{output(reset)}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    broker = {"deploy", "own_broker", "kafka_bootstrap", "cluster"}
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.faults)
            if broker & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.kafka)

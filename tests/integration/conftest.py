"""Integration tests against a real Apache Kafka broker.

The session fixture ``kafka_bootstrap`` uses ``KAFKA_BOOTSTRAP_SERVERS`` when it is set;
otherwise it starts the project's own single-node broker with ``deploy/kafka/kafka.sh start``
(resolving the jars with Maven the first time) and stops it at the end of the session, but only
if this session started it. A broker that cannot be started fails the tests: never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.pipeline_kit import Deployment

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
START_TIMEOUT_S = 600  # the first start downloads ~45 jars with Maven


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs a broker: mark it ``kafka``."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.kafka)


def _kafka_sh(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _delete_deployed_topics() -> None:
    """The topics the session's deployments made (tests leave nothing on the broker)."""
    from tests.integration.pipeline_kit import delete_deployed_topics

    print(f"deleted {delete_deployed_topics()} topics the tests made")


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a running Kafka broker."""
    if importlib.util.find_spec("aiokafka") is None:
        # Checked here rather than by importing in the test modules, so that a run without the
        # client (`pytest -m "not kafka"`) still collects; a run that wants Kafka fails.
        pytest.fail("aiokafka is not installed: pip install -e '.[kafka,test]'", pytrace=False)
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        _delete_deployed_topics()
        return

    try:
        started = _kafka_sh("start", timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        logs = _kafka_sh("logs", timeout=30)
        pytest.fail(
            f"{KAFKA_SH} start did not finish within {exc.timeout}s\n{_output(logs)}",
            pytrace=False,
        )
    if started.returncode != 0:
        pytest.fail(
            f"{KAFKA_SH} start failed (exit {started.returncode}):\n{_output(started)}",
            pytrace=False,
        )
    # `start` is idempotent: a broker that was already running (or starting) is someone
    # else's to stop; only a broker this call launched is ours.
    ours = "starting Apache Kafka" in started.stdout

    yield f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"

    _delete_deployed_topics()
    if ours:
        stopped = _kafka_sh("stop", timeout=120)
        if stopped.returncode != 0:
            print(f"{KAFKA_SH} stop failed:\n{_output(stopped)}")


@pytest.fixture
def deploy(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Deployment]]:
    """Fresh deployments (own app id and topics) on the session broker, or on `server`;
    workers stopped after the test. App ids start with the test module's name, so topics
    left on a shared broker say which test made them."""
    from tests.integration.pipeline_kit import new_deployment

    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:12] + "-"
    made: list[Deployment] = []

    def make(partitions: int = 4, guarantee: str = "at_least_once", server: str = "") -> Deployment:
        deployment = new_deployment(server or kafka_bootstrap, prefix, partitions, guarantee)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop_all()

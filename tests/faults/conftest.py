"""Fault tests: real workers on a real broker, broken on purpose.

Every test here is marked ``faults``; those that need a broker are marked ``kafka`` too, like
tests/integration. The long variants (the 200,000-event kill run) run only with
``INFLUENCE_FULL_FAULTS=1``; the default run uses smaller streams that keep the faults under
a few minutes of CI time. See docs/reliability.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The session broker and the `deploy` fixture, shared with tests/integration.
from tests.integration.conftest import deploy, kafka_bootstrap  # noqa: F401

HERE = Path(__file__).resolve().parent
FULL = os.environ.get("INFLUENCE_FULL_FAULTS", "") == "1"
"""The sizes the issue asks for (200,000 events); otherwise the CI sizes."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (tests/faults)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    broker = {"deploy", "own_broker", "kafka_bootstrap"}
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.faults)
            if broker & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.kafka)

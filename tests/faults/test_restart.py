"""A worker stopped (SIGTERM) and started again continues from its users' stored state.

The simplest fault of all, and the base of the others: half the stream, a graceful stop, a
new worker, the other half. With the memory store the new worker rebuilds the table from the
changelog; with RocksDB it either reopens the same data directory (a restart in place) or
starts on an empty one and reads the changelog (a replacement machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from scoring import Model
from tests.faults.kit import (
    assert_outcome_exact,
    embedded,
    higgs_events,
    start_worker,
    wait_processed,
)
from tests.integration.pipeline_kit import Deployment, produce_events

EVENTS = 4_000


@pytest.mark.parametrize(
    ("store", "same_dir"),
    [
        pytest.param("memory://", False),
        pytest.param("rocksdb://", True),
        pytest.param("rocksdb://", False),
    ],
    ids=["memory", "rocksdb-same-dir", "rocksdb-new-dir"],
)
def test_a_restarted_worker_continues_from_the_stored_state(
    deploy: Callable[..., Deployment],
    higgs: Path,
    model: Model,
    tmp_path: Path,
    store: str,
    same_dir: bool,
) -> None:
    events = higgs_events(EVENTS)
    deployment = deploy(4, "at_least_once")
    env = {"INFLUENCE_STORE": store}
    if same_dir:
        env["INFLUENCE_DATA_DIR"] = str(tmp_path / "data")
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[: EVENTS // 2]))
    first = start_worker(deployment, tmp_path, env=env)
    wait_processed(deployment)
    first.stop()
    deployment.workers.remove(first)  # stopped on purpose
    start_worker(deployment, tmp_path, env=env)
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events[EVENTS // 2 :]))
    wait_processed(deployment, timeout=180)
    assert_outcome_exact(deployment, embedded(events, model), model)

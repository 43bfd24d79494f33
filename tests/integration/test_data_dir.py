"""A second worker on a data directory in use stops at once, before it joins the group."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.integration.pipeline_kit import Deployment, WorkerProcess, free_port


def wait_live(worker: WorkerProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/livez", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"worker not live within {timeout}s:\n{worker.tail()}")


def test_a_second_worker_on_a_data_dir_in_use_exits_at_once_naming_it(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    deployment = deploy(2, "exactly_once")
    shared = tmp_path / "shared"
    first = deployment.start_worker(tmp_path, "--data-dir", str(shared))
    wait_live(first)

    started = time.monotonic()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "worker", "--data-dir", str(shared)],
            env={**deployment.env(), "INFLUENCE_WEB_PORT": str(free_port())},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=45,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the second worker still ran after {exc.timeout}s") from None
    took = time.monotonic() - started

    assert second.returncode == 2, second.stderr[-2000:]
    assert f"data directory {shared / deployment.name} is in use" in second.stderr
    assert took < 20, took  # Python's start-up on a loaded machine; no group join, no timeout
    assert first.alive(), first.tail()

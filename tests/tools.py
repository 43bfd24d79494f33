"""Debian tools the tests need, installed by the project's own script when missing.

CI runs as root on a fresh machine: a missing tool is installed with
``deploy/prometheus/install.sh`` (apt-get), and a tool that still cannot be had fails the test,
never skips it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_INSTALL = REPO / "deploy" / "prometheus" / "install.sh"
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True, slots=True)
class PrometheusTools:
    """Paths of Debian's Prometheus server and its promtool."""

    prometheus: str
    promtool: str


def _find() -> PrometheusTools | None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        return None
    return PrometheusTools(prometheus, promtool)


def ensure_prometheus() -> PrometheusTools:
    """Prometheus and promtool, running the install script first if either is missing."""
    found = _find()
    if found is not None:
        return found
    try:
        proc = subprocess.run(
            ["bash", str(PROMETHEUS_INSTALL)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{PROMETHEUS_INSTALL} did not finish in {INSTALL_TIMEOUT_S}s", pytrace=False)
    found = _find()
    if proc.returncode != 0 or found is None:
        pytest.fail(
            f"promtool/prometheus missing and {PROMETHEUS_INSTALL} failed "
            f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    return found

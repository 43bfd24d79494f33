"""The compiled core's own tests (`cargo test` in native/): the JSON scanner and Higgs reader
(property tests), the Bloom filter against Python's bits, `round2`, the state's size.

They build and run the core without Python (the PyO3 bindings are the crate's `python`
feature, off by default), so a defect in the core shows up there in Rust terms before
tests/test_native.py sees different bytes. A first run compiles the test dependencies
(proptest, serde_json): about a minute on 2 cores.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parents[1] / "native"


@pytest.mark.slow
def test_cargo_test_passes_without_python() -> None:
    cargo = shutil.which("cargo")
    assert cargo is not None, "Rust's cargo is not installed (the compiled core is not either)"
    done = subprocess.run(
        [cargo, "test", "--quiet"],
        cwd=NATIVE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "test result: ok" in done.stdout

"""Every Python that pyproject.toml declares runs the quick suite, from CI's one pytest command.

The full suite runs on the interpreter that runs pytest (3.11 in CI). For each other version in
the classifiers this module builds a fresh virtual environment in a temporary directory,
installs a copy of the working tree into it exactly as the README says (``pip install -e
'.[kafka,test]'``: the dependencies resolved for that version, the compiled core built for it by
cargo), and runs the quick suite there (``-m "not slow and not kafka"``, which leaves this
module out, so it does not recurse).

Why a copy and an editable install: the compiled core is built per interpreter (``_native`` is
not abi3), and an editable install puts it beside the sources, which is where the tests that
read ``scoring/`` and ``pipeline/`` as files look; the copy keeps that out of the checkout.
Why not ``--no-deps`` into a shared environment: the dependencies differ per version (compiled
wheels such as orjson, numpy and rocksdict exist per interpreter), so each version resolves its
own; pip's cache makes that a matter of seconds after the first run.

Why not a fresh temporary directory each run: cargo rebuilds PyO3 and the crate (with fat LTO,
minutes) whenever the interpreter's path or the crate's path changes. The copy, the venv and
cargo's output therefore live at fixed paths under ``native/target/pyversions/3.X/`` (cargo's
own git-ignored cache; ``cargo clean`` removes it). The venv is still made afresh and the copy
refreshed every run, so the install is tested each time; only unchanged Rust is not recompiled.

A missing interpreter fails, never skips: set ``INFLUENCE_PYTHON_3_12`` (and so on) to its path,
or install it with pyenv. Deselect with ``-m "not pyversions"``.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import HIGGS

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
CLASSIFIER = "Programming Language :: Python :: "
DECLARED = sorted(
    (
        tuple(int(p) for p in c.removeprefix(CLASSIFIER).split("."))
        for c in PROJECT["classifiers"]
        if re.fullmatch(re.escape(CLASSIFIER) + r"3\.\d+", c)
    ),
)
"""The supported versions, as the classifiers list them: ``[(3, 11), (3, 12), (3, 13)]``."""
RUNNING = sys.version_info[:2]
OTHERS = [v for v in DECLARED if v != RUNNING]
QUICK = "not slow and not kafka"
"""The quick suite's selection (README); it excludes this module, which is marked slow."""
EXTRAS = ".[kafka,test]"
"""What the README's test command installs."""
INSTALL_TIMEOUT_S = 1800
"""A first build compiles the Rust core with fat LTO per version: minutes on a loaded machine."""
SUITE_TIMEOUT_S = 1200
CACHE = REPO / "native" / "target" / "pyversions"
"""Per version: ``src`` (the copy), ``venv`` and ``cargo`` (its target dir), at fixed paths."""


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _version_of(python: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # e.g. a pyenv shim for a version that is not the active one
    return tuple(int(p) for p in out.split())


def find_python(version: tuple[int, ...]) -> str | None:
    """``$INFLUENCE_PYTHON_3_X``, else ``python3.X`` on PATH, else pyenv's newest 3.X."""
    name = f"python{_dotted(version)}"
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        os.environ.get(f"INFLUENCE_PYTHON_{version[0]}_{version[1]}"),
        shutil.which(name),
        *sorted(glob.glob(f"{pyenv_root}/versions/{_dotted(version)}.*/bin/{name}"), reverse=True),
    ]
    for python in filter(None, candidates):
        if _version_of(python) == version:
            return python
    return None


def _tree_files() -> list[str]:
    """The checkout as a clone plus local edits would have it: tracked and new, not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _copy_tree(destination: Path) -> None:
    for name in _tree_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: int, what: str) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{output[-6000:]}", pytrace=False)
    return output


def _environment(venv: Path, cargo_target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["CARGO_TARGET_DIR"] = str(cargo_target)
    env["INFLUENCE_HIGGS"] = str(HIGGS)  # the copy has no ../shared beside it
    return env


def test_the_declared_versions_are_consistent() -> None:
    """requires-python starts where the classifiers do, they run without gaps, and the
    interpreter running this suite is one of them."""
    assert len(DECLARED) >= 2, PROJECT["classifiers"]
    assert PROJECT["requires-python"] == f">={_dotted(DECLARED[0])}"
    assert [minor for _, minor in DECLARED] == list(range(DECLARED[0][1], DECLARED[-1][1] + 1))
    assert RUNNING in DECLARED, f"running on {_dotted(RUNNING)}, not a declared version"


@pytest.mark.slow
@pytest.mark.pyversions
@pytest.mark.parametrize("version", OTHERS, ids=_dotted)
def test_quick_suite_passes_on(version: tuple[int, ...]) -> None:
    python = find_python(version)
    if python is None:
        pytest.fail(
            f"Python {_dotted(version)} is declared in pyproject.toml but not found: put "
            f"python{_dotted(version)} on PATH, set INFLUENCE_PYTHON_{version[0]}_{version[1]} "
            f"to its path, or `pyenv install {_dotted(version)}`",
            pytrace=False,
        )
    started = time.monotonic()
    home = CACHE / _dotted(version)
    source, venv = home / "src", home / "venv"
    for stale in (source, venv):
        shutil.rmtree(stale, ignore_errors=True)
    _copy_tree(source)  # copy2 keeps mtimes: cargo sees unchanged sources as unchanged
    env = _environment(venv, home / "cargo")
    _run([python, "-m", "venv", str(venv)], home, env, 300, "creating the venv")
    venv_python = str(venv / "bin" / "python")
    _run(
        [venv_python, "-m", "pip", "install", "-q", "-e", EXTRAS],
        source,
        env,
        INSTALL_TIMEOUT_S,
        f"installing {EXTRAS} on {_dotted(version)}",
    )
    installed = time.monotonic()
    _run(
        [venv_python, "-c", "import scoring._native"],
        source,
        env,
        60,
        f"importing the compiled core on {_dotted(version)} (was cargo on PATH at install?)",
    )
    output = _run(
        [venv_python, "-m", "pytest", "-m", QUICK, "-q", "-p", "no:cacheprovider"],
        source,
        env,
        SUITE_TIMEOUT_S,
        f"the quick suite on {_dotted(version)}",
    )
    lines = output.strip().splitlines()
    summary = lines[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, summary
    print(
        f"Python {_dotted(version)}: {summary}; install {installed - started:.0f} s, "
        f"suite {time.monotonic() - installed:.0f} s",
        *(line for line in lines if line.startswith("SKIPPED")),
        sep="\n",
    )

"""`influence calibrate`: fit a model version's 1-100 quantile table on a reference stream (§7).

The table is fitted on the raw influence z of every user who received engagement, read at the
end of the reference stream. Use a long steady-state population (the generator's 60+ days), not
a news burst: a table fitted on a burst saturates the top of the scale.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.replay import replay
from scoring import Model, parse_model, read_mass
from scoring.model import BUNDLED_MODELS, bundled_model_text
from scoring.scale import fit_knots

KNOTS = 1001
_SCALE_SECTION = re.compile(r"^\[scale\].*\Z", re.MULTILINE | re.DOTALL)


def engaged_masses(paths: list[str], model: Model, fmt: str = "auto") -> list[float]:
    """z of every user with engagement, at the end of the stream."""
    engine, _ = replay(paths, model, fmt=fmt, show_progress=True)
    end = engine.now
    if end is None:
        return []
    out: list[float] = []
    for _, state in engine.users():
        mass = read_mass(state, end, model)
        if mass.effective > 0.0:
            out.append(mass.z)
    return out


def with_knots(model_text: str, knots: list[float], note: str) -> str:
    """The model file's text with its [scale] table replaced by `knots`."""
    body = _SCALE_SECTION.sub("", model_text).rstrip() + "\n\n"
    rows = [", ".join(f"{k:.6f}" for k in knots[i : i + 8]) for i in range(0, len(knots), 8)]
    return body + f"[scale]\n# {note}\nknots = [\n    " + ",\n    ".join(rows) + ",\n]\n"


def read_model_text(path: str | None) -> str:
    """A model file's text: a bundled version by name (v1, v2) or the default without a path,
    as `scoring.load_model` reads them."""
    if path is None:
        return bundled_model_text()
    if path in BUNDLED_MODELS and not Path(path).exists():
        return bundled_model_text(path)
    return Path(path).read_text("utf-8")


def calibrate(paths: list[str], base_model_path: str | None, out: str, fmt: str = "auto") -> int:
    """Writes `out`: the base model with a freshly fitted scale; returns the population size."""
    text = read_model_text(base_model_path)
    model = parse_model(text)
    masses = engaged_masses(paths, model, fmt)
    knots = fit_knots(masses, KNOTS)
    note = f"quantiles of z over {len(masses)} engaged users of: {' '.join(paths)}"
    new_text = with_knots(text, knots, note)
    parse_model(new_text)
    Path(out).write_text(new_text, "utf-8")
    return len(masses)

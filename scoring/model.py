"""The versioned model file (TOML) loaded into one frozen parameter record.

Every number the scoring rules use lives in the model file, never in code, so a model version is
exactly its file: ``model_version`` is the file's semver plus a short sha256 of its bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from scoring.errors import ModelError

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def decay_rate(half_life_days: float) -> float:
    """λ per millisecond for a half-life given in days."""
    return math.log(2.0) / (half_life_days * DAY_MS)


@dataclass(frozen=True, slots=True)
class Model:
    """Frozen parameters of one model version (see models/v1.toml and v2.toml for their
    meaning)."""

    version: str
    model_version: str
    kind_weights: tuple[float, float, float, float]
    selectivity_free_per_day: float
    actor_pair_rate: float
    automation_free_per_hour: float
    automation_full_per_hour: float
    automation_min_factor: float
    dedup_ids: int
    fast_rate: float
    slow_rate: float
    slow_floor: float
    grace_days: int
    grace_renew_days: int
    kappa: float
    baseline_days: int
    baseline_floor: float
    burst_rate: float
    content_excess_weight: float
    mention_excess_weight: float
    engager_baseline_floor: float
    engager_excess_weight: float
    reciprocity_rate: float
    shrinkage_prior: float
    audience_weight: float
    log10_followers_cap: float
    audience_min_mass: float
    max_topics: int
    max_tweets_per_topic: int
    max_engagers_per_topic: int
    max_days_per_topic: int
    min_own_tweets: int
    min_topic_days: int
    min_topic_engagers: int
    max_tweet_share: float
    min_wilson_share: float
    wilson_z: float
    topic_prior_weight: float
    topic_prior_share: float
    change_threshold: float
    decay_check_min_score: float
    top_reasons: int
    open_days: int
    max_in_pairs: int
    max_out_pairs: int
    max_action_runs: int
    top_contributors: int
    minute_bucket_ms: int
    scale_knots: tuple[float, ...]
    slow_to_fast: float
    """Puts a slow-decayed sum on the fast sum's scale (a 180-day sum is ~4x a 45-day one)."""
    engager_score: bool = False
    """Model 2: the raw influence is built from distinct engagers, not engagement mass (the
    ``[engagers]`` table of the model file; model 1 has none)."""
    engager_hold_days: int = 0
    """Days an engager counts in full before it starts to decay (at most ``open_days``)."""
    reciprocal_free: int = 0
    """Reciprocal engagers a user may have before the ring discount applies."""
    content_burst_weight: float = 0.0
    """Model 2: weight of new engagers above the daily baseline on content (retweets, quotes,
    replies); on mentions they keep ``engager_excess_weight``."""


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    table = doc.get(name)
    if not isinstance(table, dict):
        raise ModelError(f"model file lacks the [{name}] table")
    return table


def _number(table: dict[str, Any], key: str) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelError(f"model parameter {key!r} must be a number, got {value!r}")
    return float(value)


def _integer(table: dict[str, Any], key: str) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(f"model parameter {key!r} must be an integer, got {value!r}")
    return value


def parse_model(text: str) -> Model:
    """Builds the parameter record from the model file's text; raises ModelError if malformed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model file is not valid TOML: {exc}") from exc
    version = doc.get("version")
    if not isinstance(version, str):
        raise ModelError("model file lacks a string 'version'")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    weights, actor, decay = _table(doc, "weights"), _table(doc, "actor"), _table(doc, "decay")
    burst, recip = _table(doc, "burst"), _table(doc, "reciprocity")
    audience = _table(doc, "audience")
    topics, events, state = _table(doc, "topics"), _table(doc, "events"), _table(doc, "state")
    windows = _table(doc, "windows")
    engagers = doc.get("engagers")
    if engagers is not None and not isinstance(engagers, dict):
        raise ModelError("[engagers] must be a table")
    knots = doc.get("scale", {}).get("knots", [])
    if not isinstance(knots, list) or not all(isinstance(k, int | float) for k in knots):
        raise ModelError("[scale] knots must be a list of numbers")
    if any(b < a for a, b in itertools.pairwise(knots)):
        raise ModelError("[scale] knots must be non-decreasing")
    return Model(
        version=version,
        model_version=f"{version}+{digest}",
        kind_weights=(
            _number(weights, "retweet"),
            _number(weights, "quote"),
            _number(weights, "reply"),
            _number(weights, "mention"),
        ),
        selectivity_free_per_day=_number(actor, "selectivity_free_per_day"),
        actor_pair_rate=decay_rate(_number(actor, "pair_half_life_days")),
        automation_free_per_hour=_number(actor, "automation_free_per_hour"),
        automation_full_per_hour=_number(actor, "automation_full_per_hour"),
        automation_min_factor=_number(actor, "automation_min_factor"),
        dedup_ids=_integer(actor, "dedup_ids"),
        fast_rate=decay_rate(_number(decay, "fast_half_life_days")),
        slow_rate=decay_rate(_number(decay, "slow_half_life_days")),
        slow_floor=_number(decay, "slow_floor"),
        grace_days=_integer(decay, "grace_days"),
        grace_renew_days=_integer(decay, "grace_renew_days"),
        kappa=_number(burst, "kappa"),
        baseline_days=_integer(burst, "baseline_days"),
        baseline_floor=_number(burst, "baseline_floor"),
        burst_rate=decay_rate(_number(burst, "half_life_days")),
        content_excess_weight=_number(burst, "content_excess_weight"),
        mention_excess_weight=_number(burst, "mention_excess_weight"),
        engager_baseline_floor=_number(burst, "engager_baseline_floor"),
        engager_excess_weight=_number(burst, "engager_excess_weight"),
        reciprocity_rate=decay_rate(_number(recip, "pair_half_life_days")),
        shrinkage_prior=_number(audience, "shrinkage_prior"),
        audience_weight=_number(audience, "weight"),
        log10_followers_cap=_number(audience, "log10_followers_cap"),
        audience_min_mass=_number(audience, "min_mass"),
        max_topics=_integer(topics, "max_topics"),
        max_tweets_per_topic=_integer(topics, "max_tweets_per_topic"),
        max_engagers_per_topic=_integer(topics, "max_engagers_per_topic"),
        max_days_per_topic=_integer(topics, "max_days_per_topic"),
        min_own_tweets=_integer(topics, "min_own_tweets"),
        min_topic_days=_integer(topics, "min_days"),
        min_topic_engagers=_integer(topics, "min_engagers"),
        max_tweet_share=_number(topics, "max_tweet_share"),
        min_wilson_share=_number(topics, "min_wilson_share"),
        wilson_z=_number(topics, "wilson_z"),
        topic_prior_weight=_number(topics, "prior_weight"),
        topic_prior_share=_number(topics, "prior_share"),
        change_threshold=_number(events, "change_threshold"),
        decay_check_min_score=_number(events, "decay_check_min_score"),
        top_reasons=_integer(events, "top_reasons"),
        open_days=_integer(state, "open_days"),
        max_in_pairs=_integer(state, "max_in_pairs"),
        max_out_pairs=_integer(state, "max_out_pairs"),
        max_action_runs=_integer(state, "max_action_runs"),
        top_contributors=_integer(state, "top_contributors"),
        minute_bucket_ms=_integer(windows, "minute_bucket_s") * 1000,
        scale_knots=tuple(float(k) for k in knots),
        slow_to_fast=_number(decay, "fast_half_life_days") / _number(decay, "slow_half_life_days"),
        **_engager_parameters(engagers, _integer(state, "open_days")),
    )


def _engager_parameters(table: dict[str, Any] | None, open_days: int) -> dict[str, Any]:
    """Model 2's ``[engagers]`` table; an absent table is model 1 (mass-based raw influence)."""
    if table is None:
        return {}
    hold = _integer(table, "hold_days")
    if not 0 <= hold <= open_days:
        # sealed days are read as past their hold: a hold longer than the open days would
        # count a folded engager above 1
        raise ModelError(f"[engagers] hold_days must lie in 0..open_days ({open_days})")
    return {
        "engager_score": True,
        "engager_hold_days": hold,
        "reciprocal_free": _integer(table, "reciprocal_free"),
        "content_burst_weight": _number(table, "content_burst_weight"),
    }


BUNDLED_MODELS = ("v1", "v2")
"""Model versions shipped in scoring/models/, loadable by name. A released file never changes,
so a name always gives the same `model_version`."""
DEFAULT_MODEL = "v2"
"""The version used without a model file (replays, workers, calibrate's base): v2 since issue
14's rollout (docs/model.md, "Rollout"): it predicts later retweeters better, holds every
gaming bound, and was quantile-matched to v1. v1 stays bundled: `--model v1` or its path."""


def bundled_model_text(name: str = DEFAULT_MODEL) -> str:
    """The text of a bundled model file by version name (`BUNDLED_MODELS`)."""
    if name not in BUNDLED_MODELS:
        raise ModelError(f"no bundled model {name!r} (bundled: {', '.join(BUNDLED_MODELS)})")
    return resources.files("scoring").joinpath(f"models/{name}.toml").read_text("utf-8")


def load_model(path: str | Path | None = None) -> Model:
    """Loads a model file; a bundled version by name (``v1``, ``v2``) when no such file
    exists; without either, the bundled default version (`DEFAULT_MODEL`)."""
    if path is None:
        return parse_model(bundled_model_text())
    if str(path) in BUNDLED_MODELS and not Path(path).exists():
        return parse_model(bundled_model_text(str(path)))
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    return parse_model(text)

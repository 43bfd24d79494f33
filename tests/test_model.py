"""The model file reaches the scoring rules key by key (scoring/model.py), and a malformed file
is refused with a message that names what is wrong.

Each parameter is changed alone in a copy of v1.toml and must show up, converted, in its own
field and nowhere else: a key read into the wrong field, a unit conversion lost, or a parameter
silently defaulted all fail here. (Every rule test reads the session's model, built once; they
notice a broken parameter only if they happen to depend on it.)
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pytest

from scoring import Model, load_model, parse_model
from scoring.errors import ModelError
from scoring.model import bundled_model_text

V1 = resources.files("scoring").joinpath("models/v1.toml").read_text("utf-8")
DAY = 86_400_000
LN2 = math.log(2.0)
FLOAT, INT = 7.25, 7


@pytest.fixture
def model() -> Model:
    """These tests edit v1's text (`V1`) and compare with what it parses to: model 1, by name
    (the bundled default is model 2 since issue 14's rollout)."""
    return load_model("v1")


def test_v2_is_the_default_and_v1_stays_loadable_unchanged() -> None:
    """Issue 14: v2 is the default; v1 loads by name or path with the model_version it had."""
    assert load_model().model_version == load_model("v2").model_version
    assert load_model().version == "2.0.0" and load_model().engager_score
    v1 = load_model("v1")
    assert v1.model_version == "1.0.0+2812b1a5"
    assert load_model(Path(__file__).resolve().parents[1] / "scoring/models/v1.toml") == v1
    assert parse_model(V1) == v1
    with pytest.raises(ModelError, match="no bundled model"):
        bundled_model_text("v3")
    with pytest.raises(ModelError, match="cannot read model file"):
        load_model("v3")  # neither a file nor a bundled name


"""The value each parameter is set to in turn: equal to no v1 parameter."""

PARAMETERS: list[tuple[str, str, str, object]] = [
    ("weights", "retweet", "kind_weights", (FLOAT, 1.2, 0.8, 0.5)),
    ("weights", "quote", "kind_weights", (1.0, FLOAT, 0.8, 0.5)),
    ("weights", "reply", "kind_weights", (1.0, 1.2, FLOAT, 0.5)),
    ("weights", "mention", "kind_weights", (1.0, 1.2, 0.8, FLOAT)),
    ("actor", "selectivity_free_per_day", "selectivity_free_per_day", FLOAT),
    ("actor", "pair_half_life_days", "actor_pair_rate", LN2 / (FLOAT * DAY)),
    ("actor", "automation_free_per_hour", "automation_free_per_hour", FLOAT),
    ("actor", "automation_full_per_hour", "automation_full_per_hour", FLOAT),
    ("actor", "automation_min_factor", "automation_min_factor", FLOAT),
    ("actor", "dedup_ids", "dedup_ids", INT),
    ("decay", "fast_half_life_days", "fast_rate", LN2 / (FLOAT * DAY)),
    ("decay", "slow_half_life_days", "slow_rate", LN2 / (FLOAT * DAY)),
    ("decay", "slow_floor", "slow_floor", FLOAT),
    ("decay", "grace_days", "grace_days", INT),
    ("decay", "grace_renew_days", "grace_renew_days", INT),
    ("burst", "kappa", "kappa", FLOAT),
    ("burst", "baseline_days", "baseline_days", INT),
    ("burst", "baseline_floor", "baseline_floor", FLOAT),
    ("burst", "half_life_days", "burst_rate", LN2 / (FLOAT * DAY)),
    ("burst", "content_excess_weight", "content_excess_weight", FLOAT),
    ("burst", "mention_excess_weight", "mention_excess_weight", FLOAT),
    ("burst", "engager_baseline_floor", "engager_baseline_floor", FLOAT),
    ("burst", "engager_excess_weight", "engager_excess_weight", FLOAT),
    ("reciprocity", "pair_half_life_days", "reciprocity_rate", LN2 / (FLOAT * DAY)),
    ("audience", "shrinkage_prior", "shrinkage_prior", FLOAT),
    ("audience", "weight", "audience_weight", FLOAT),
    ("audience", "log10_followers_cap", "log10_followers_cap", FLOAT),
    ("audience", "min_mass", "audience_min_mass", FLOAT),
    ("topics", "max_topics", "max_topics", INT),
    ("topics", "max_tweets_per_topic", "max_tweets_per_topic", INT),
    ("topics", "max_engagers_per_topic", "max_engagers_per_topic", INT),
    ("topics", "max_days_per_topic", "max_days_per_topic", INT),
    ("topics", "min_own_tweets", "min_own_tweets", INT),
    ("topics", "min_days", "min_topic_days", INT),
    ("topics", "min_engagers", "min_topic_engagers", INT),
    ("topics", "max_tweet_share", "max_tweet_share", FLOAT),
    ("topics", "min_wilson_share", "min_wilson_share", FLOAT),
    ("topics", "wilson_z", "wilson_z", FLOAT),
    ("topics", "prior_weight", "topic_prior_weight", FLOAT),
    ("topics", "prior_share", "topic_prior_share", FLOAT),
    ("events", "change_threshold", "change_threshold", FLOAT),
    ("events", "decay_check_min_score", "decay_check_min_score", FLOAT),
    ("events", "top_reasons", "top_reasons", INT),
    ("state", "open_days", "open_days", INT),
    ("state", "max_in_pairs", "max_in_pairs", INT),
    ("state", "max_out_pairs", "max_out_pairs", INT),
    ("state", "max_action_runs", "max_action_runs", INT),
    ("state", "top_contributors", "top_contributors", INT),
    ("windows", "minute_bucket_s", "minute_bucket_ms", INT * 1000),
]
DERIVED = {"model_version", "slow_to_fast"}
"""Fields computed from several keys or the whole text; checked on their own below."""


def _with(table: str, key: str, value: str, text: str = V1) -> str:
    """`text` with `key` of `[table]` set to `value` (the value written as TOML)."""
    header = f"\n[{table}]"
    start = text.index(header) + len(header)
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end
    section, count = re.subn(
        rf"^{key}\s*=\s*[^#\n]*", f"{key} = {value}", text[start:end], count=1, flags=re.M
    )
    assert count == 1, f"no {key} in [{table}]"
    return text[:start] + section + text[end:]


@pytest.mark.parametrize(("table", "key", "field", "expected"), PARAMETERS)
def test_each_parameter_lands_in_its_field(
    model: Model, table: str, key: str, field: str, expected: object
) -> None:
    value = FLOAT if isinstance(expected, float) or field == "kind_weights" else INT
    changed = parse_model(_with(table, key, repr(value)))
    got = getattr(changed, field)
    assert got == pytest.approx(expected, rel=1e-15), (key, got)
    assert type(got) is type(expected) or isinstance(expected, tuple)
    others = {f.name for f in fields(Model)} - {field} - DERIVED
    if key in ("fast_half_life_days", "slow_half_life_days"):
        others.discard("slow_to_fast")
    assert all(getattr(changed, name) == getattr(model, name) for name in others), key


MODEL_2_FIELDS = {"engager_score", "engager_hold_days", "reciprocal_free", "content_burst_weight"}
"""Read from model 2's [engagers] table; model 1 has none and keeps their defaults."""


def test_every_field_is_read_from_the_file() -> None:
    read = {field for _, _, field, _ in PARAMETERS} | DERIVED | {"version", "scale_knots"}
    assert read | MODEL_2_FIELDS == {f.name for f in fields(Model)}


def test_model_2_reads_its_engagers_table(model: Model) -> None:
    assert not model.engager_score
    v2 = load_model(Path(__file__).resolve().parents[1] / "scoring/models/v2.toml")
    assert v2.engager_score and v2.version == "2.0.0"
    assert (v2.engager_hold_days, v2.reciprocal_free, v2.content_burst_weight) == (3, 2, 1.0)
    text = V1 + "\n[engagers]\nhold_days = 9\nreciprocal_free = 2\ncontent_burst_weight = 1.0\n"
    with pytest.raises(ModelError, match="hold_days"):
        parse_model(text)  # a hold past the open days would count folded engagers above 1


def test_derived_fields_version_and_knots(model: Model) -> None:
    assert model.version == "1.0.0"
    assert model.slow_to_fast == 45.0 / 180.0
    assert parse_model(_with("decay", "slow_half_life_days", "90.0")).slow_to_fast == 0.5
    assert len(model.scale_knots) == 1001
    assert model.scale_knots[0] == 0.032315 and model.scale_knots[-1] > model.scale_knots[0]
    assert parse_model(V1.replace('version = "1.0.0"', 'version = "2.1.0"')).version == "2.1.0"
    unscaled = V1[: V1.index("\n[scale]")]
    assert parse_model(unscaled).scale_knots == ()  # calibration fills the scale in
    flat = parse_model(
        _with("scale", "knots", "[0.1, 0.1, 0.2]", unscaled + "\n[scale]\nknots = []\n")
    )
    assert flat.scale_knots == (0.1, 0.1, 0.2)  # ties allowed: only a decrease is refused


@pytest.mark.parametrize(
    ("table", "key", "value", "message"),
    [
        ("weights", "retweet", '"1.0"', "'retweet' must be a number, got '1.0'"),
        ("weights", "retweet", "true", "'retweet' must be a number, got True"),
        ("decay", "grace_days", "21.0", "'grace_days' must be an integer, got 21.0"),
        ("decay", "grace_days", "true", "'grace_days' must be an integer, got True"),
        ("decay", "grace_days", '"21"', "'grace_days' must be an integer, got '21'"),
    ],
)
def test_wrong_types_are_refused_by_name(table: str, key: str, value: str, message: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(_with(table, key, value))
    assert str(caught.value) == f"model parameter {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = ", "model file is not valid TOML: "),
        (V1.replace('version = "1.0.0"', "version = 1"), "model file lacks a string 'version'"),
        (V1.replace("[burst]", "[bursts]"), "model file lacks the [burst] table"),
        (
            V1.replace("knots = [", 'knots = "x"\nold = ['),
            "[scale] knots must be a list of numbers",
        ),
        (V1.replace("knots = [", 'knots = ["0.1", '), "[scale] knots must be a list of numbers"),
        (V1.replace("knots = [", "knots = [9.0, "), "[scale] knots must be non-decreasing"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_load_model_reads_a_file_or_says_which_it_could_not(tmp_path: Path) -> None:
    path = tmp_path / "v9.toml"
    path.write_text(_with("weights", "quote", "2.5").replace("# Influence", "# Einfluß"), "utf-8")
    loaded = load_model(path)
    assert loaded.kind_weights[1] == 2.5
    assert loaded == parse_model(path.read_text("utf-8"))
    assert load_model(str(path)) == loaded
    with pytest.raises(
        ModelError, match=re.escape(f"cannot read model file {tmp_path / 'no.toml'}")
    ):
        load_model(tmp_path / "no.toml")

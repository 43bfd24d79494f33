"""The Prometheus metrics of issue 4: names, types and labels of the contract, values that follow
what was processed, and `influence replay --metrics-port` serving them during a run."""

from __future__ import annotations

import importlib.util
import io
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics import (
    LATENCY_BUCKETS_S,
    PipelineMetrics,
    Recovery,
    StateSize,
)
from pipeline.native_engine import Core, NativeEngine
from pipeline.replay import replay
from scoring import Model
from scoring.events import event_to_dict
from tests.conftest import Events

CONTRACT = {
    "influence_events_consumed": ("counter", {"topic", "kind"}),
    "influence_events_invalid": ("counter", {"reason"}),
    "influence_dead_letters": ("counter", {"reason"}),
    "influence_duplicates_skipped": ("counter", {"stage"}),
    "influence_score_changes": ("counter", {"cause"}),
    "influence_processing_latency_seconds": ("histogram", set()),
    "influence_event_time_lag_seconds": ("gauge", set()),
    "influence_last_event_time_seconds": ("gauge", set()),
    "influence_consumer_lag_messages": ("gauge", {"topic", "partition"}),
    "influence_users_tracked": ("gauge", set()),
    "influence_state_bytes": ("gauge", set()),
    "influence_rebalances": ("counter", set()),
    "influence_recovery_in_progress": ("gauge", set()),
    "influence_recovery_remaining_messages": ("gauge", set()),
    "influence_model_info": ("gauge", {"version", "core"}),
    "influence_up": ("gauge", set()),
}
"""METRICS.md, as the text format names families (counters without `_total`; an info metric
is a gauge `<name>_info` there, an info `<name>` in OpenMetrics)."""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def openmetrics_families(text: str) -> dict[str, Metric]:
    """Families of an OpenMetrics exposition, read by the strict OpenMetrics parser."""
    parse = cast(
        Callable[[str], Iterator[Metric]], openmetrics_parser.text_string_to_metric_families
    )
    return {f.name: f for f in parse(text)}


def test_every_metric_of_the_contract_is_exposed_with_its_type() -> None:
    metrics = PipelineMetrics("1.2.3+abc")
    metrics.consumed("tweets", "tweet")
    metrics.invalid("bad_json")
    metrics.dead_letter("bad_json")
    metrics.duplicate("target")
    metrics.score_change("decay")
    metrics.latency(0.02)
    metrics.event_time(1_000_000)
    metrics.lag_provider = lambda: {("tweets", 3): 7}
    text = metrics.render().decode()
    exposed = families(text)
    for name, (kind, labels) in CONTRACT.items():
        assert exposed.get(name) == kind, name
        for family in text_string_to_metric_families(text):
            if family.name == name:
                for s in family.samples:
                    assert set(s.labels) - {"le"} == labels, (name, s.labels)
    assert all(name.startswith("influence_") for name in exposed)


def test_values_follow_what_was_recorded() -> None:
    now = 2_000_000.0
    metrics = PipelineMetrics("v", clock=lambda: now)
    for _ in range(3):
        metrics.consumed("retweets", "retweet")
    metrics.consumed("tweets", "reply", 2)
    metrics.invalid("oversize")
    metrics.dead_letter("oversize")
    metrics.dead_letter("unknown_kind")
    metrics.duplicate("actor", 4)
    for _ in range(5):
        metrics.score_change("engagement")
    metrics.score_change("reciprocity")
    metrics.event_time(1_999_000_000, partition=1)
    metrics.event_time(1_000_000_000, partition=1)  # older: the clock never goes back
    metrics.event_time(1_500_000_000, partition=0)
    assert metrics.partition_event_ms == {1: 1_999_000_000, 0: 1_500_000_000}
    metrics.rebalance()
    metrics.rebalance()
    metrics.state_provider = lambda: StateSize(12, 3456)
    metrics.recovery_provider = lambda: Recovery(True, 99)
    metrics.lag_provider = lambda: {("tweets", 0): 0, ("mentions", 2): 41}
    values = samples(metrics.render().decode())
    assert (
        values[("influence_events_consumed_total", (("kind", "retweet"), ("topic", "retweets")))]
        == 3
    )
    assert (
        values[("influence_events_consumed_total", (("kind", "reply"), ("topic", "tweets")))] == 2
    )
    assert values[("influence_events_invalid_total", (("reason", "oversize"),))] == 1
    assert values[("influence_dead_letters_total", (("reason", "unknown_kind"),))] == 1
    assert values[("influence_duplicates_skipped_total", (("stage", "actor"),))] == 4
    assert values[("influence_score_changes_total", (("cause", "engagement"),))] == 5
    assert values[("influence_score_changes_total", (("cause", "reciprocity"),))] == 1
    assert values[("influence_last_event_time_seconds", ())] == 1_999_000
    assert values[("influence_event_time_lag_seconds", ())] == pytest.approx(1_000)
    assert values[("influence_rebalances_total", ())] == 2
    assert values[("influence_users_tracked", ())] == 12
    assert values[("influence_state_bytes", ())] == 3456
    assert values[("influence_recovery_in_progress", ())] == 1
    assert values[("influence_recovery_remaining_messages", ())] == 99
    assert (
        values[("influence_consumer_lag_messages", (("partition", "2"), ("topic", "mentions")))]
        == 41
    )
    assert values[("influence_model_info", (("core", "python"), ("version", "v")))] == 1
    assert values[("influence_up", ())] == 1


def test_latency_histogram_is_cumulative_in_base_units() -> None:
    metrics = PipelineMetrics("v")
    for seconds in (0.0005, 0.003, 0.003, 0.2, 1000.0):
        metrics.latency(seconds)
    values = samples(metrics.render().decode())
    bucket = "influence_processing_latency_seconds_bucket"
    assert values[(bucket, (("le", "0.001"),))] == 1
    assert values[(bucket, (("le", "0.005"),))] == 3
    assert values[(bucket, (("le", "0.25"),))] == 4
    assert values[(bucket, (("le", str(LATENCY_BUCKETS_S[-1])),))] == 4
    assert values[(bucket, (("le", "+Inf"),))] == 5
    assert values[("influence_processing_latency_seconds_count", ())] == 5
    assert values[("influence_processing_latency_seconds_sum", ())] == pytest.approx(1000.2065)


def test_latency_is_observed_when_the_changes_are_produced() -> None:
    metrics = PipelineMetrics("v")
    metrics.score_change("engagement", consumed_at=100.0)
    metrics.score_change("decay", consumed_at=100.5)
    metrics.score_change("decay")  # no consumption time known: counted, not timed
    values = samples(metrics.render().decode())
    assert values[("influence_processing_latency_seconds_count", ())] == 0
    metrics.produced(now=101.0)
    metrics.produced(now=200.0)  # nothing pending any more
    values = samples(metrics.render().decode())
    assert values[("influence_processing_latency_seconds_count", ())] == 2
    assert values[("influence_processing_latency_seconds_sum", ())] == pytest.approx(1.5)
    assert values[("influence_score_changes_total", (("cause", "decay"),))] == 2


def test_event_time_lag_is_unknown_before_the_first_event() -> None:
    values = samples(PipelineMetrics("v").render().decode())
    assert math.isnan(values[("influence_event_time_lag_seconds", ())])
    assert math.isnan(values[("influence_last_event_time_seconds", ())])


def test_each_process_has_its_own_registry() -> None:
    first, second = PipelineMetrics("a"), PipelineMetrics("b")
    first.consumed("tweets", "tweet")
    assert first.registry is not second.registry
    values = samples(second.render().decode())
    assert (
        "influence_events_consumed_total",
        (("kind", "tweet"), ("topic", "tweets")),
    ) not in values


def _stream(ev: Events) -> list[bytes]:
    events = [
        ev("tweet", "alice", tweet_id="t1", hashtags=["higgs"]),
        ev("retweet", "bob", "alice", hour=1, ref_tweet_id="t1"),
        ev("reply", "carol", "alice", hour=2, ref_tweet_id="t1", tweet_id="t2"),
        ev("mention", "dave", "alice", day=1),
        ev("mention", "erin", "bob", day=2),
    ]
    lines = [orjson.dumps(event_to_dict(e)) for e in events]
    lines.append(lines[1])  # the same event id again: a duplicate
    lines.append(b"{not json")
    lines.append(b'{"id":"x","kind":"like","ts":1,"actor":"a"}')
    return lines


def test_replay_metrics_match_the_replay_summary(tmp_path: Path, model: Model, ev: Events) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(_stream(ev)) + b"\n")
    metrics = PipelineMetrics(model.model_version)
    events_out = io.BytesIO()
    engine, summary = replay(
        [str(path)], model, events_out=events_out, metrics=metrics, show_progress=False
    )
    values = samples(metrics.render().decode())
    consumed = {
        dict(labels)["kind"]: v
        for (name, labels), v in values.items()
        if name == "influence_events_consumed_total"
    }
    assert consumed == summary.by_kind
    assert values[("influence_duplicates_skipped_total", (("stage", "actor"),))] == 1
    changes = [orjson.loads(line) for line in events_out.getvalue().splitlines()]
    by_cause: dict[str, int] = {}
    for change in changes:
        by_cause[change["cause"]] = by_cause.get(change["cause"], 0) + 1
    exported = {
        dict(labels)["cause"]: v
        for (name, labels), v in values.items()
        if name == "influence_score_changes_total"
    }
    assert exported == by_cause and sum(by_cause.values()) == summary.score_changes
    invalid = {
        dict(labels)["reason"]: v
        for (name, labels), v in values.items()
        if name == "influence_events_invalid_total"
    }
    assert sum(invalid.values()) == summary.dead_letters == 2
    assert values[("influence_users_tracked", ())] == len(engine.states)
    assert engine.now is not None
    assert values[("influence_last_event_time_seconds", ())] == engine.now / 1000
    core = "native" if isinstance(engine, NativeEngine) else "python"
    info = (("core", core), ("version", model.model_version))
    assert values[("influence_model_info", info)] == 1


@pytest.mark.parametrize("core", ["python", "native"])
def test_model_info_names_the_core_the_replay_ran(
    tmp_path: Path, model: Model, ev: Events, core: Core
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(_stream(ev)) + b"\n")
    metrics = PipelineMetrics(model.model_version)
    replay([str(path)], model, metrics=metrics, show_progress=False, core=core)
    values = samples(metrics.render().decode())
    info = {labels for (name, labels), _ in values.items() if name == "influence_model_info"}
    assert info == {(("core", core), ("version", model.model_version))}


OPENMETRICS = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
"""The Accept header of a Prometheus scrape (2.x and 3.x ask for OpenMetrics first)."""


def test_model_info_is_an_info_metric_in_openmetrics() -> None:
    """The classic text format has no info type (it writes a gauge `influence_model_info`):
    a scraper that asks for OpenMetrics gets the info type, under the same series name."""
    metrics = PipelineMetrics("1.2.3+abc", core="native")
    metrics.latency(0.02)
    body, content_type = metrics.exposition(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    parsed = openmetrics_families(body.decode())
    model_info = parsed["influence_model"]
    assert model_info.type == "info"
    assert [(s.name, s.labels, s.value) for s in model_info.samples] == [
        ("influence_model_info", {"version": "1.2.3+abc", "core": "native"}, 1.0)
    ]
    expected = {name: kind for name, (kind, _) in CONTRACT.items()}
    del expected["influence_model_info"]
    assert {name: f.type for name, f in parsed.items()} == {**expected, "influence_model": "info"}
    text, text_type = metrics.exposition(None)
    assert text == metrics.render() and text_type.startswith("text/plain; version=0.0.4")
    assert families(text.decode())["influence_model_info"] == "gauge"


def _native_built() -> bool:
    return importlib.util.find_spec("scoring._native") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _scrape(port: int, accept: str | None = None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def test_replay_serves_metrics_while_it_runs(ev: Events) -> None:
    """A replay of stdin stays open: the counts of what it has read so far are scrapable."""
    port = _free_port()
    lines = _stream(ev)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "replay", "-", "--metrics-port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(b"\n".join(lines[:4]) + b"\n")
        process.stdin.flush()
        deadline = time.monotonic() + 30
        consumed = 0.0
        while time.monotonic() < deadline:
            try:
                values = samples(_scrape(port))
            except OSError:
                time.sleep(0.2)
                continue
            consumed = sum(
                v for (name, _), v in values.items() if name == "influence_events_consumed_total"
            )
            if consumed >= 3:
                break
            time.sleep(0.2)
        # The fourth line may still sit in the reader until the next one arrives.
        assert consumed >= 3
        assert values[("influence_up", ())] == 1
        scraped = openmetrics_families(_scrape(port, OPENMETRICS))
        assert scraped["influence_model"].type == "info"
        core = "native" if _native_built() else "python"  # replay's default: auto
        assert scraped["influence_model"].samples[0].labels["core"] == core
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(OSError):
        _scrape(port)  # the server went away with the run

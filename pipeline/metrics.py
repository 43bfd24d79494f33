"""Prometheus metrics of a worker or of the embedded engine (the contract of issue 4).

Hot paths only add to plain Python counters (a dict increment, no lock, no label lookup);
everything is turned into Prometheus families when `/metrics` is scraped, by a custom
collector on a registry of this process's own. Values that are cheaper to read than to keep up
to date (consumer lag, users held, recovery progress, the embedded engine's counts) come from
providers called at scrape time.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder

PREFIX = "influence"
LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds of the processing-latency histogram, seconds (a batch can take a while)."""
MS_PER_S = 1000.0

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class StateSize:
    """Users this process holds and the serialised bytes of their state."""

    users: int
    state_bytes: int | None
    """None where measuring it would cost too much (the embedded engine): exported as NaN."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """Table recovery progress (changelog replay after a rebalance or a restart)."""

    in_progress: bool
    remaining_messages: int


LagProvider = Callable[[], Mapping[tuple[str, int], int]]
StateProvider = Callable[[], StateSize]
RecoveryProvider = Callable[[], Recovery]
CountsProvider = Callable[["PipelineMetrics"], None]


@dataclass(slots=True)
class PipelineMetrics:
    """Counters the agents or the embedded engine feed; one instance per process.

    Methods are cheap enough for per-message use. Labels are bounded: topic names, event
    kinds, reasons and causes, never user ids.
    """

    model_version: str
    core: str = "python"
    """The scoring core this process runs, `python` or `native` (`pipeline.native_engine`):
    the `core` label of `influence_model_info` (a worker's `Topology` sets it from
    `Settings.core`)."""
    clock: Callable[[], float] = time.time
    """Wall clock, only for the event-time lag (now - event time of the last event)."""
    consumed_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    invalid_counts: dict[str, int] = field(default_factory=dict)
    dead_letter_counts: dict[str, int] = field(default_factory=dict)
    duplicate_counts: dict[str, int] = field(default_factory=dict)
    score_change_counts: dict[str, int] = field(default_factory=dict)
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    latency_count: int = 0
    latency_sum: float = 0.0
    last_event_ms: int | None = None
    partition_event_ms: dict[int, int] = field(default_factory=dict)
    """Latest event time seen per partition: the stream clock query answers are read at."""
    pending_since: list[float] = field(default_factory=list)
    """Consumption times (monotonic) of messages whose score changes await the flush."""
    rebalances: int = 0
    up: bool = True
    lag_provider: LagProvider | None = None
    state_provider: StateProvider | None = None
    recovery_provider: RecoveryProvider | None = None
    counts_provider: CountsProvider | None = None
    """Called first at each scrape, to copy counts kept elsewhere (the embedded engine's)."""
    registry: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def consumed(self, topic: str, kind: str, amount: int = 1) -> None:
        key = (topic, kind)
        counts = self.consumed_counts
        counts[key] = counts.get(key, 0) + amount

    def invalid(self, reason: str, amount: int = 1) -> None:
        self.invalid_counts[reason] = self.invalid_counts.get(reason, 0) + amount

    def dead_letter(self, reason: str, amount: int = 1) -> None:
        self.dead_letter_counts[reason] = self.dead_letter_counts.get(reason, 0) + amount

    def duplicate(self, stage: str, amount: int = 1) -> None:
        self.duplicate_counts[stage] = self.duplicate_counts.get(stage, 0) + amount

    def score_change(self, cause: str, consumed_at: float | None = None) -> None:
        """One score change; `consumed_at` (monotonic) times it once `produced` is called."""
        self.score_change_counts[cause] = self.score_change_counts.get(cause, 0) + 1
        if consumed_at is not None:
            self.pending_since.append(consumed_at)

    def produced(self, now: float | None = None) -> None:
        """The pending score changes reached the broker: observe their latencies."""
        if self.pending_since:
            now = time.monotonic() if now is None else now
            for since in self.pending_since:
                self.latency(now - since)
            self.pending_since.clear()

    def latency(self, seconds: float) -> None:
        """One message's consumed → score-change-produced time (wall clock, seconds)."""
        index = bisect.bisect_left(LATENCY_BUCKETS_S, seconds)
        if index < len(LATENCY_BUCKETS_S):
            self.latency_buckets[index] += 1
        self.latency_count += 1
        self.latency_sum += seconds

    def event_time(self, ts_ms: int, partition: int | None = None) -> None:
        """The event time (ms) of a processed event; the clocks never move backwards."""
        last = self.last_event_ms
        if last is None or ts_ms > last:
            self.last_event_ms = ts_ms
        if partition is not None and ts_ms > self.partition_event_ms.get(partition, -1):
            self.partition_event_ms[partition] = ts_ms

    def rebalance(self) -> None:
        self.rebalances += 1

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every metric. That format has no
        info type: `influence_model_info` is written as a gauge there."""
        return generate_latest(self.registry)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """Body and content type for a scrape with this `Accept` header: OpenMetrics when the
        scraper asks for it (Prometheus does), where `influence_model` is of type info, else
        `render`'s text format. What `influence replay --metrics-port` serves."""
        encoder, content_type = choose_encoder(accept or "")
        body: bytes = encoder(self.registry)
        return body, content_type


class _Collector:
    """Turns a `PipelineMetrics` into Prometheus families at scrape time."""

    def __init__(self, metrics: PipelineMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        if m.counts_provider is not None:
            m.counts_provider(m)
        yield _counter(
            "events_consumed",
            "Valid input events consumed, by input topic and event kind.",
            ("topic", "kind"),
            {k: float(v) for k, v in dict(m.consumed_counts).items()},
        )
        yield _counter(
            "events_invalid",
            "Input messages refused and dead-lettered, by reason.",
            ("reason",),
            {(k,): float(v) for k, v in dict(m.invalid_counts).items()},
        )
        yield _counter(
            "dead_letters",
            "Dead-letter records written (input and control refusals), by reason.",
            ("reason",),
            {(k,): float(v) for k, v in dict(m.dead_letter_counts).items()},
        )
        yield _counter(
            "duplicates_skipped",
            "Redelivered or duplicate events skipped, by stage (actor, target).",
            ("stage",),
            {(k,): float(v) for k, v in dict(m.duplicate_counts).items()},
        )
        yield _counter(
            "score_changes",
            "Score-change events produced, by cause "
            "(engagement, reciprocity, topics, audience, decay).",
            ("cause",),
            {(k,): float(v) for k, v in dict(m.score_change_counts).items()},
        )
        yield _latency(m)
        last = m.last_event_ms
        last_s = last / MS_PER_S if last is not None else math.nan
        yield GaugeMetricFamily(
            f"{PREFIX}_last_event_time_seconds",
            "Event time (unix seconds) of the last processed event.",
            value=last_s,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_event_time_lag_seconds",
            "Wall clock minus the event time of the last processed event.",
            value=m.clock() - last_s if last is not None else math.nan,
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag_messages",
            "End offset minus consumer position of each assigned input partition.",
            labels=("topic", "partition"),
        )
        if m.lag_provider is not None:
            for (topic, partition), messages in sorted(m.lag_provider().items()):
                lag.add_metric((topic, str(partition)), float(messages))
        yield lag
        if m.state_provider is not None:
            size = m.state_provider()
            users = float(size.users)
            state_bytes = math.nan if size.state_bytes is None else float(size.state_bytes)
        else:
            users = state_bytes = 0.0
        yield GaugeMetricFamily(
            f"{PREFIX}_users_tracked", "Users whose state this process holds.", value=users
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_state_bytes", "Serialised bytes of the user state held.", value=state_bytes
        )
        rebalances = CounterMetricFamily(
            f"{PREFIX}_rebalances", "Partition assignments seen.", value=float(m.rebalances)
        )
        yield rebalances
        recovery = m.recovery_provider() if m.recovery_provider is not None else None
        yield GaugeMetricFamily(
            f"{PREFIX}_recovery_in_progress",
            "1 while table recovery (changelog replay) runs, else 0.",
            value=float(recovery is not None and recovery.in_progress),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_recovery_remaining_messages",
            "Changelog messages still to replay before the tables are recovered.",
            value=float(recovery.remaining_messages if recovery is not None else 0),
        )
        info = InfoMetricFamily(
            f"{PREFIX}_model", "Version of the scoring model in use, and the core running it."
        )
        info.add_metric((), {"version": m.model_version, "core": m.core})
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}_up", "1 when this process is serving.", value=float(m.up)
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _counter(
    name: str, documentation: str, labels: tuple[str, ...], values: Mapping[Any, float]
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(label_values, value)
    return family


def _latency(m: PipelineMetrics) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    for bound, count in zip(LATENCY_BUCKETS_S, list(m.latency_buckets), strict=True):
        cumulative += count
        buckets.append((repr(bound), float(cumulative)))
    # Another thread may observe while this one reads: +Inf must never be below a bucket.
    buckets.append(("+Inf", float(max(m.latency_count, cumulative))))
    return HistogramMetricFamily(
        f"{PREFIX}_processing_latency_seconds",
        "Wall-clock time from consuming a message to producing its score-change event.",
        buckets=buckets,
        sum_value=m.latency_sum,
    )


def serve_metrics(
    metrics: PipelineMetrics, port: int, host: str = "127.0.0.1"
) -> Callable[[], None]:
    """Serves GET /metrics from a background thread (the embedded engine); returns `stop`."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop

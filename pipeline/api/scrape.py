"""What `/metrics` reads from a worker at scrape time, not per event: state size, table
recovery and consumer lag (`PipelineMetrics`' providers).

Each is read when Prometheus asks, from structures the worker keeps anyway, so serving
metrics costs the stream nothing. `consumer_lag` reads two offsets Faust keeps without a
public synchronous accessor, through `pipeline.faust_compat`.
"""

from __future__ import annotations

from typing import Any

from pipeline.api.read_model import WorkerState
from pipeline.faust_compat import committed_offset, read_offset, recovery_progress
from pipeline.leaders import Leaders
from pipeline.metrics import PipelineMetrics, Recovery, StateSize


def state_size(worker: WorkerState) -> StateSize:
    """Users and stored bytes of the active partitions, as the leader boards count them
    (O(partitions); complete once the boards are built)."""
    actives = worker.active_partitions()
    leaders: Leaders = worker.pipeline.leaders
    return StateSize(leaders.users(actives), leaders.state_bytes(actives))


def recovery(app: Any) -> Recovery:
    """Whether the Faust app is restoring tables from their changelogs, and what remains."""
    return Recovery(*recovery_progress(app))


def consumer_lag(app: Any) -> dict[tuple[str, int], int]:
    """End offset − position for each assigned partition of the pipeline's own topics."""
    consumer = app.consumer
    changelogs = set(app.tables.changelog_topics)
    # The consumer's read and committed offsets are kept by Faust without a public
    # synchronous accessor (`pipeline.faust_compat`); the high water is aiokafka's, refreshed
    # by every fetch.
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:  # not fetched yet or not assigned any more
            continue
        last_read = read_offset(consumer, tp)
        position = last_read + 1 if last_read is not None else committed_offset(consumer, tp)
        if high is None or position is None:
            continue
        out[(tp.topic, tp.partition)] = max(0, int(high) - int(position))
    return out


def connect(metrics: PipelineMetrics, worker: WorkerState) -> None:
    """Makes `metrics` read the worker's lag, state size and recovery at each scrape."""
    app = worker.app
    metrics.lag_provider = lambda: consumer_lag(app)
    metrics.state_provider = lambda: state_size(worker)
    metrics.recovery_provider = lambda: recovery(app)

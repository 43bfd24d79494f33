"""What the query API reads of a running worker: its users, who owns them, and its clocks.

`WorkerState` is a read-only view over the worker's `pipeline.kafka_app.Pipeline` (users
table, decoded-user caches, per-partition stream clocks, leader boards) and the Faust app
(assignment, table recovery). Views never write through it; the one thing it starts is the
table scan that builds the leader boards, under the pipeline's lock, as a batch would.

Scores are read at event time, never the wall clock: a user at its partition's stream clock
(the latest event time seen there, or the user's own latest event if that is later).
"""

from __future__ import annotations

from typing import Any

from pipeline.api.top import latest_of
from pipeline.codec import key_partition
from pipeline.faust_compat import rebalancing, recovery_done
from pipeline.leaders import Leaders, TopEntry
from pipeline.metrics import PipelineMetrics
from pipeline.steps import decode_stored
from scoring import UserState


class WorkerState:
    """What the views and scrape-time metrics read from a worker (its table, consumer, clocks).

    `pipeline` is `pipeline.kafka_app.Pipeline`: its users table (bytes → encoded `Stored`),
    the decoded-user cache, the per-partition stream clocks and the leader boards
    (`pipeline.leaders`, kept up to date as users are written).
    """

    def __init__(self, app: Any, pipeline: Any, metrics: PipelineMetrics) -> None:
        self.app = app
        self.pipeline = pipeline
        self.metrics = metrics

    # ownership and clocks

    @property
    def changelog(self) -> str:
        topic: str = self.pipeline.table.changelog_topic.get_topic_name()
        return topic

    def partition_of(self, user: str) -> int:
        # Kafka's default partitioner, as producers must use for input keys (docs/pipeline.md).
        return key_partition(user.encode(), self.pipeline.settings.partitions)

    def active_partitions(self) -> set[int]:
        changelog = self.changelog
        return {
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == changelog
        }

    def recovered(self) -> bool:
        return recovery_done(self.app)

    def now_for(self, partition: int, state: UserState) -> int:
        """The partition's stream time: the latest event time seen there (inputs and
        engagements), which every clock below can only under-estimate; after a restart, until
        the partition sees traffic, the user's own latest event."""
        clock = self.pipeline.clocks.get(partition)
        candidates = [
            state.last_ts,
            self.metrics.partition_event_ms.get(partition, -1),
            clock.now if clock is not None and clock.now is not None else -1,
        ]
        return int(max(candidates))

    def stream_time(self) -> int | None:
        """The latest event time of this worker's partitions: events processed, decay clocks,
        and (after a restart, before any traffic) the latest update of a stored user."""
        actives = self.active_partitions()
        seen = self.metrics.partition_event_ms
        clocks = self.pipeline.clocks
        return latest_of(
            self.pipeline.leaders.latest(actives),
            *(seen.get(p) for p in actives),
            *(clocks[p].now for p in actives if p in clocks),
        )

    # users

    def _decoded(self, user: str, partition: int, data: bytes | None) -> UserState | None:
        """The partition cache's copy (newest, maybe not flushed yet), else the table's."""
        cache = self.pipeline.caches.get(partition)
        cached: UserState | None = cache.cached(user) if cache is not None else None
        if cached is not None:
            return cached
        return decode_stored(data).state if data is not None else None

    def lookup(self, user: str) -> tuple[UserState, int] | None:
        partition = self.partition_of(user)
        if partition not in self.active_partitions():
            return None
        state = self._decoded(user, partition, self.pipeline.table.get(user.encode()))
        return None if state is None else (state, self.now_for(partition, state))

    def written(self, partition: int, user: str) -> UserState | None:
        """The user as last written to the table, which its leader-board bound was computed
        from: the cache's copy unless it holds changes not flushed yet, else the table's."""
        cache = self.pipeline.caches.get(partition)
        if cache is not None and not cache.is_dirty(user):
            cached: UserState | None = cache.cached(user)
            if cached is not None:
                return cached
        data = self.pipeline.table.get(user.encode())
        return decode_stored(data).state if data is not None else None

    # rankings

    def indexed(self) -> bool:
        """The leader boards hold every stored user: the table scan that follows each
        assignment (`Pipeline.scan_watched_users`, which feeds them) has run since."""
        return self.pipeline.watched is not None

    async def ensure_indexed(self) -> bool:
        """Runs that scan if no event did yet (a quiet partition after a restart or a
        rebalance), once the tables are recovered; False while partitions are moving."""
        if self.indexed():
            return True
        if rebalancing(self.app) or not self.recovered():
            return False
        pipeline = self.pipeline
        async with pipeline.lock:  # no batch runs meanwhile, as when a batch scans
            if pipeline.watched is None and not rebalancing(self.app):
                pipeline.watched = await pipeline.scan_watched_users()
        return self.indexed()

    def top(self, n: int, topic: str | None, at: int) -> list[TopEntry]:
        """This worker's n best at event time `at`, from the leader boards."""
        leaders: Leaders = self.pipeline.leaders
        return leaders.top(self.active_partitions(), n, topic, at, self.written)

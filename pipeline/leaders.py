"""Leader boards for `GET /top`: each partition's engaged users ordered by an upper bound of
their score, so a ranking at an event time reads a few dozen users instead of the whole table.

Why a bound exists. For a fixed state, `scoring.mass.read_mass` only falls as the read time
moves on from the start of the UTC day of the user's last update: regular mass decays (slow on
event time, fast on the grace clock), burst excess and burst engagers fade, reciprocity and
followers do not move; the effective mass is monotone in all of these, and the score, the
audience term and every topic score (`scoring.score.topic_scores`: the effective mass times a
share that does not depend on time) are non-decreasing in the effective mass. The grace clock
is why the bound is read at the *day start* and not at the update itself: a day of silence is
paused once it is over, so at midnight the fast clock steps back to where it stood when that
day began, and a score can be higher just after midnight than at the user's last event
(`tests/test_leaders.py` shows one). It never steps back past the start of the day of the last
update: each day adds at most one paused day. So the score read at that day start bounds every
later read, and it changes only when the state does, when the worker writes the user (once per
batch, `Leaders.flush`) or scans the table after a rebalance (`scanned`).

A ranking at time T walks the users in descending bound (all partitions asked at once), reads
the exact score at T of each, and stops when the next bound is below the n-th exact score, less
`BOUND_SLACK`. Users whose last update is on a later day than T (a peer asked at a time it has
passed) have no bound at T and are read exactly. The best-bounded users of each partition, and
those a walk read, keep a copy of what a score read needs (`kernel`), taken as written: decoding
a leading user (thousands of engagers, ~1.5 ms) would otherwise be most of a ranking's cost.

The boards also count users and stored bytes per partition, for `/metrics` without a scan.
Plain Python over decoded states: no Faust, no broker.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sortedcontainers import SortedList

from pipeline.codec import key_partition
from pipeline.native_steps import NativeUserCache
from pipeline.steps import Stored, UserCache, decode_stored
from scoring import Model, UserState, read_mass, score_of
from scoring.clock import GraceClock
from scoring.model import DAY_MS
from scoring.score import topic_scores
from scoring.state import DayBucket, ReceivedState
from scoring.topics import TopicStats

BOUND_SLACK = 0.015
"""A bound comes from the worker's copy of a state, an exact read maybe from the table's, which
keeps floats to 7 digits (`scoring.state`): rounded to 2 decimals, one unit (0.01) apart."""

KERNEL_RANK = 1500
"""Users of a partition ranked this high by bound keep a `kernel` (more than `api.MAX_TOP`:
a walk reads a little past the n-th user)."""

Read = Callable[[int, str], UserState | None]
"""(partition, user) -> the user's state as written (the one its bound was computed from)."""


class TopEntry(NamedTuple):
    """One ranked user: score, and the topic score when ranking by topic."""

    user: str
    score: float
    topic_score: float | None

    def rank(self) -> tuple[float, float, str]:
        """Best first; ties by score, then by user id, as `influence replay --top` orders."""
        first = self.topic_score if self.topic_score is not None else self.score
        return (-first, -self.score, self.user)

    def as_dict(self) -> dict[str, object]:
        return {"user": self.user, "score": self.score, "topic_score": self.topic_score}


class _Entry(NamedTuple):
    """A user who received engagement (the others are never ranked)."""

    key: tuple[float, str]  # (-bound, user), its place in the board's ranking
    day: int  # UTC day of the last update: the bound holds from its start on
    topics: tuple[tuple[str, float], ...]  # (topic, bound of its score) per published topic


@dataclass(slots=True)
class Board:
    """One partition: its users, ranked ones by bound, and per topic its publishers."""

    sizes: dict[str, int] = field(default_factory=dict)
    """Every user: bytes of its stored record."""
    entries: dict[str, _Entry] = field(default_factory=dict)
    ranking: Any = field(default_factory=SortedList)
    """SortedList of (-bound, user): best bound first, ties by user id."""
    topics: dict[str, Any] = field(default_factory=dict)
    """topic -> SortedList of (-topic bound, user)."""
    kernels: dict[str, UserState] = field(default_factory=dict)
    """Score-read copies of users as last written, for the best-ranked (`KERNEL_RANK`)."""
    kernel_floor: tuple[float, str] | None = None
    """Users written with a key up to this one (the `KERNEL_RANK`-th at the last trim) keep a
    kernel; None: all do (the board is small, or was not trimmed yet)."""
    state_bytes: int = 0
    latest: int | None = None
    """Latest event time of any user written here (the partition's time after a restart)."""
    latest_day: int = -(2**62)
    """Latest day an engaged user was updated: a read at an earlier day reads some exactly."""


class Leaders:
    """Every partition's board; fed by the worker's writes, scans, forgets and resets."""

    def __init__(self, partitions: int, model: Model) -> None:
        self.partitions = partitions
        self.model = model
        self.boards: dict[int, Board] = {}

    # feed

    def update(self, partition: int, user: str, state: UserState, size: int) -> None:
        """The user as just written: `size` bytes, its bound from `state`."""
        if state.received is None:
            self.update_bound(partition, user, size, state.last_ts, None)
            return
        day = state.last_ts // DAY_MS
        mass = read_mass(state, day * DAY_MS, self.model)
        topics = tuple(topic_scores(state, mass, self.model)) if state.topics else ()
        self.update_bound(
            partition, user, size, state.last_ts, (day, score_of(mass, self.model), topics), state
        )

    def update_bound(
        self,
        partition: int,
        user: str,
        size: int,
        last_ts: int,
        bound: tuple[int, float, Iterable[tuple[str, float]]] | None,
        state: UserState | None = None,
    ) -> None:
        """The user as just written, with its bound computed (`update`, or the compiled core:
        `pipeline.native_steps`): None for a user who received nothing, else (day of the last
        update, score at its start, (topic, score bound) per published topic). `state`, when
        given, is kept as the user's `kernel` if it ranks high; without one (the compiled
        core's users), a ranking that reaches the user reads it from the table."""
        board = self.boards.get(partition)
        if board is None:
            board = self.boards[partition] = Board()
        old = board.sizes.get(user)
        if old is not None:
            board.state_bytes -= old
            if user in board.entries:
                self._unlink(board, user)
        board.sizes[user] = size
        board.state_bytes += size
        if board.latest is None or last_ts > board.latest:
            board.latest = last_ts
        if bound is None:
            return
        day, score, topic_bounds = bound
        if day > board.latest_day:
            board.latest_day = day
        key = (-score, user)
        board.ranking.add(key)
        if state is not None and (board.kernel_floor is None or key <= board.kernel_floor):
            _keep(board, user, kernel(state))
        topics = tuple(topic_bounds)
        for topic, topic_bound in topics:
            ranked = board.topics.get(topic)
            if ranked is None:
                ranked = board.topics[topic] = SortedList()
            ranked.add((-topic_bound, user))
        board.entries[user] = _Entry(key, day, topics)

    def flush(
        self,
        partition: int,
        cache: UserCache | NativeUserCache,
        store: MutableMapping[bytes, bytes],
    ) -> list[tuple[bytes, bytes]]:
        """`cache.flush(store)`, indexing each user written: the decoded states are taken
        before the flush (which may drop them from the cache), the sizes from its records.
        Nothing awaits in between, so a view never sees the store ahead of the boards."""
        if isinstance(cache, NativeUserCache):
            out = []
            for key, value, last_ts, bound in cache.flush_bounds(store):
                self.update_bound(partition, key.decode(), len(value), last_ts, bound)
                out.append((key, value))
            return out
        changed = [(user, cache.users[user].state) for user in cache.dirty]
        records = cache.flush(store)
        sizes = dict(records)
        for user, state in changed:
            self.update(partition, user, state, len(sizes[user.encode()]))
        return records

    def scanned(self, key: bytes, value: bytes) -> Stored:
        """A table row read after a rebalance: decoded once, indexed, and handed back."""
        stored = decode_stored(value)
        self.update(key_partition(key, self.partitions), key.decode(), stored.state, len(value))
        return stored

    def forget(self, partition: int, user: str) -> None:
        board = self.boards.get(partition)
        if board is not None and (size := board.sizes.pop(user, None)) is not None:
            board.state_bytes -= size
            if user in board.entries:
                self._unlink(board, user)

    def drop(self, partition: int) -> None:
        """The partition was revoked."""
        self.boards.pop(partition, None)

    def clear(self) -> None:
        """Partitions moved: the table is scanned again."""
        self.boards.clear()

    @staticmethod
    def _unlink(board: Board, user: str) -> None:
        old = board.entries.pop(user)
        board.kernels.pop(user, None)
        board.ranking.remove(old.key)
        for topic, bound in old.topics:
            ranked = board.topics[topic]
            ranked.remove((-bound, user))
            if not ranked:
                del board.topics[topic]

    # reads, O(partitions)

    def users(self, partitions: Iterable[int]) -> int:
        return sum(len(b.sizes) for b in self._boards(partitions))

    def state_bytes(self, partitions: Iterable[int]) -> int:
        return sum(b.state_bytes for b in self._boards(partitions))

    def latest(self, partitions: Iterable[int]) -> int | None:
        times = [b.latest for b in self._boards(partitions) if b.latest is not None]
        return max(times) if times else None

    def _boards(self, partitions: Iterable[int]) -> Iterator[Board]:
        boards = self.boards
        return (boards[p] for p in partitions if p in boards)

    # ranking

    def top(
        self, partitions: Iterable[int], n: int, topic: str | None, at: int, read: Read
    ) -> list[TopEntry]:
        """The n best users of `partitions` at event time `at`, by score or by `topic` score,
        in `TopEntry.rank` order: what ranking every user at `at` gives (`api.rank_users`)."""
        model = self.model
        found: dict[str, TopEntry] = {}
        firsts: list[float] = []
        """The n best first keys (topic score or score) read so far, a min-heap."""

        def consider(partition: int, user: str) -> None:
            if user in found:
                return
            board = self.boards[partition]
            state = board.kernels.get(user)
            if state is None:
                state = read(partition, user)
                if state is None or state.received is None:
                    return
                _keep(board, user, kernel(state))
            mass = read_mass(state, at, model)
            score = score_of(mass, model)
            topic_score = None
            if topic is not None:
                scores = topic_scores(state, mass, model)
                topic_score = next((t.score for t in scores if t.topic == topic), None)
                if topic_score is None:
                    return
            found[user] = TopEntry(user, score, topic_score)
            first = score if topic_score is None else topic_score
            if len(firsts) < n:
                heapq.heappush(firsts, first)
            elif first > firsts[0]:
                heapq.heapreplace(firsts, first)

        day = at // DAY_MS
        chosen = [(p, self.boards[p]) for p in sorted(set(partitions)) if p in self.boards]
        walks = []
        for partition, board in chosen:
            if board.latest_day > day:  # updated after `at`'s day: no bound at `at`
                for user, entry in board.entries.items():
                    if entry.day > day and (topic is None or _publishes(entry, topic)):
                        consider(partition, user)
            ranking = board.ranking if topic is None else board.topics.get(topic)
            if ranking is not None:
                walks.append(_walk(partition, ranking))
        for (negative_bound, user), partition in heapq.merge(*walks):
            if len(firsts) >= n and -negative_bound < firsts[0] - BOUND_SLACK:
                break
            consider(partition, user)
        return sorted(found.values(), key=TopEntry.rank)[:n]


def _walk(partition: int, ranking: Any) -> Iterator[tuple[tuple[float, str], int]]:
    for key in ranking:
        yield key, partition


def _publishes(entry: _Entry, topic: str) -> bool:
    return any(t == topic for t, _ in entry.topics)


def _keep(board: Board, user: str, copy: UserState) -> None:
    kernels = board.kernels
    kernels[user] = copy
    if len(kernels) > 2 * KERNEL_RANK:  # drop those no longer ranked high
        floor = board.kernel_floor = board.ranking[KERNEL_RANK - 1]
        entries = board.entries
        board.kernels = {
            u: k
            for u, k in kernels.items()
            if u == user or (u in entries and entries[u].key <= floor)
        }


def kernel(state: UserState) -> UserState:
    """A copy of what `read_mass`, `score_of` and `topic_scores` read of `state` (the same
    floats), without its pairs, windows and actions, and sharing nothing the steps mutate.
    Under every model version: model 2 also reads the engager sums, the reciprocal engagers
    and what the discounts removed (`tests/test_leaders.py` checks each bundled version)."""
    r = state.received
    assert r is not None
    c = state.clock
    received = ReceivedState(
        buckets=[
            DayBucket(b.day, b.raw, b.content, b.fast, b.slow, b.burst, b.new_engagers)
            for b in r.buckets
        ],
        history=list(r.history),
        sealed_fast=r.sealed_fast,
        sealed_slow=r.sealed_slow,
        sealed_engagers=r.sealed_engagers,
        sealed_burst=r.sealed_burst,
        sealed_burst_engagers=r.sealed_burst_engagers,
        burst_ref=r.burst_ref,
        pair_total=r.pair_total,
        pair_reciprocal=r.pair_reciprocal,
        kind_mass=list(r.kind_mass),
        removed=list(r.removed),
        counts=list(r.counts),
        sealed_engager_fast=r.sealed_engager_fast,
        sealed_engager_slow=r.sealed_engager_slow,
        reciprocal_engagers=r.reciprocal_engagers,
    )
    topics = {
        tag: TopicStats(
            t.own_tweets, list(t.days), t.mass, t.count, list(t.engagers), dict(t.tweets), t.error
        )
        for tag, t in state.topics.items()
    }
    return UserState(
        landmark=state.landmark,
        clock=GraceClock(list(c.runs), c.folded_paused, c.period_start, c.budget),
        followers=state.followers,
        received=received,
        topics=topics,
        last_ts=state.last_ts,
    )

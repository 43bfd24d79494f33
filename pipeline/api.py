"""The query API and health endpoints of a worker (issue 4), as thin Faust views over plain
functions that build `Reply`s, so the logic is tested without a broker.

- `GET /users/{id}`, `/users/{id}/explain`: answered by the worker that owns the user's
  partition; any other worker forwards the request there (Faust's router knows who owns which
  changelog partition).
- `GET /top?n=&topic=`: every worker ranks its own users (`local=1`); the asked worker merges.
- `GET /livez`, `/readyz` (ready once table recovery has finished), `/metrics`: never
  authenticated. The query API needs `Authorization: Bearer <INFLUENCE_API_TOKEN>` when the
  token is set.

Scores are read at event time: the partition's stream clock (the latest event time seen
there), or the user's own latest event if that is later. Never the wall clock.
"""

from __future__ import annotations

import heapq
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pipeline.codec import key_partition
from pipeline.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from pipeline.metrics import PipelineMetrics, Recovery, StateSize
from pipeline.replay import snapshot_record
from scoring import Model, UserState, explain, read_mass, score_of
from scoring.events import MAX_ID_LENGTH
from scoring.score import reasons, topic_scores

log = logging.getLogger(__name__)

JSON = "application/json"
DEFAULT_TOP = 10
MAX_TOP = 1000
ROUTED_HEADER = "X-Influence-Routed"
"""Set on requests one worker forwards to another: the receiver answers, never forwards again
(two workers that disagree about ownership during a rebalance cannot bounce a request)."""
FORWARD_TIMEOUT_S = 10.0
STATE_SCAN_INTERVAL_S = 10.0
"""Users held and their bytes are counted by scanning the table: at most this often."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status and a JSON body."""

    status: int
    body: object
    headers: Mapping[str, str] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(self.body)


def error(status: int, code: str, detail: str) -> Reply:
    """The API's error shape: ``{"error": code, "detail": text}``."""
    headers = {"WWW-Authenticate": 'Bearer realm="influence"'} if status == 401 else None
    return Reply(status, {"error": code, "detail": detail}, headers)


def check_token(authorization: str | None, token: str | None) -> Reply | None:
    """None when the request may pass: no token configured, or the right bearer token."""
    if not token:
        return None
    if authorization is None:
        return error(401, "unauthorized", "missing Authorization: Bearer <token>")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return error(401, "unauthorized", "bad bearer token")
    return None


def check_user_id(user: str) -> Reply | None:
    if not user or len(user) > MAX_ID_LENGTH:
        return error(400, "bad_user_id", f"user ids have 1..{MAX_ID_LENGTH} characters")
    return None


@dataclass(frozen=True, slots=True)
class TopQuery:
    n: int
    topic: str | None
    local: bool


def parse_top_query(query: Mapping[str, str]) -> TopQuery | Reply:
    """`n` (1..MAX_TOP, default DEFAULT_TOP), `topic` (a hashtag, `#` and case ignored)."""
    raw_n = query.get("n")
    n = DEFAULT_TOP
    if raw_n is not None:
        text = raw_n.strip()
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
            return error(400, "bad_parameter", f"n must be an integer in 1..{MAX_TOP}")
        n = int(text)
    topic = query.get("topic")
    if topic is not None:
        topic = topic.strip().lstrip("#").lower()
        if not topic or len(topic) > MAX_ID_LENGTH:
            return error(400, "bad_parameter", f"topic must have 1..{MAX_ID_LENGTH} characters")
    local = query.get("local", "0")
    if local not in ("0", "1"):
        return error(400, "bad_parameter", "local must be 0 or 1")
    return TopQuery(n, topic, local == "1")


def user_body(user: str, state: UserState, now: int, model: Model) -> dict[str, object]:
    """Score, its components (reasons), counts, windows and published topics at event time."""
    body = snapshot_record(user, state, now, model)
    mass = read_mass(state, now, model)
    body["reasons"] = [{"code": r.code, "points": r.points} for r in reasons(state, mass, model)]
    body["as_of"] = now
    return body


def explain_body(user: str, state: UserState, now: int, model: Model) -> dict[str, object]:
    """The full explanation (scoring.explain) with who, which model and at what event time."""
    body = explain(state, now, model).as_dict()
    body["user"] = user
    body["model_version"] = model.model_version
    body["as_of"] = now
    return body


def user_reply(
    user: str,
    found: tuple[UserState, int] | None,
    model: Model,
    render: Callable[[str, UserState, int, Model], dict[str, object]] = user_body,
) -> Reply:
    bad = check_user_id(user)
    if bad is not None:
        return bad
    if found is None:
        return error(404, "unknown_user", f"no state for user {user[:MAX_ID_LENGTH]!r}")
    state, now = found
    return Reply(200, render(user, state, now, model))


@dataclass(frozen=True, slots=True)
class TopEntry:
    user: str
    score: float
    topic_score: float | None

    def rank(self) -> tuple[float, float, str]:
        first = self.topic_score if self.topic_score is not None else self.score
        return (-first, -self.score, self.user)

    def as_dict(self) -> dict[str, object]:
        return {"user": self.user, "score": self.score, "topic_score": self.topic_score}


def rank_users(
    users: Iterable[tuple[str, UserState, int]], n: int, topic: str | None, model: Model
) -> list[TopEntry]:
    """The n best of `users` by score, or by topic score for users who publish `topic`."""
    entries: list[TopEntry] = []
    for user, state, now in users:
        if state.received is None:
            continue  # never engaged: the lowest score, and not a ranking
        mass = read_mass(state, now, model)
        topic_score = None
        if topic is not None:
            topic_score = next(
                (t.score for t in topic_scores(state, mass, model) if t.topic == topic), None
            )
            if topic_score is None:
                continue
        entries.append(TopEntry(user, score_of(mass, model), topic_score))
    return heapq.nsmallest(n, entries, key=TopEntry.rank)


def merge_top(lists: Iterable[Iterable[TopEntry]], n: int) -> list[TopEntry]:
    """One ranking from each worker's; a user seen twice (mid-rebalance) counts once."""
    seen: set[str] = set()
    merged: list[TopEntry] = []
    for entry in sorted((e for entries in lists for e in entries), key=TopEntry.rank):
        if entry.user not in seen:
            seen.add(entry.user)
            merged.append(entry)
    return merged[:n]


def top_body(
    entries: list[TopEntry], query: TopQuery, model_version: str, complete: bool
) -> dict[str, object]:
    return {
        "n": query.n,
        "topic": query.topic,
        "model_version": model_version,
        "complete": complete,
        "users": [e.as_dict() for e in entries],
    }


def entries_from_body(body: object) -> list[TopEntry]:
    """A peer's `local=1` answer back into entries (raises on a malformed answer)."""
    if not isinstance(body, dict) or not isinstance(body.get("users"), list):
        raise ValueError("not a /top answer")
    return [
        TopEntry(
            str(u["user"]),
            float(u["score"]),
            None if u["topic_score"] is None else float(u["topic_score"]),
        )
        for u in body["users"]
    ]


def readiness(recovered: bool) -> Reply:
    if recovered:
        return Reply(200, {"status": "ready"})
    return Reply(503, {"status": "recovering"})


class UserSource(Protocol):
    """Users of the partitions this worker owns, each with the event time to read it at."""

    def lookup(self, user: str) -> tuple[UserState, int] | None: ...

    def local_users(self) -> Iterator[tuple[str, UserState, int]]: ...


# --- Faust wiring: everything below needs a running worker --------------------------------


class WorkerState:
    """What the views and scrape-time metrics read from a worker (its table, consumer, clocks).

    `pipeline` is `pipeline.kafka_app.Pipeline`: its users table (bytes → encoded `Stored`),
    the decoded-user cache, and the per-partition stream clocks.
    """

    def __init__(self, app: Any, pipeline: Any, metrics: PipelineMetrics) -> None:
        self.app = app
        self.pipeline = pipeline
        self.metrics = metrics
        self._state_size = StateSize(0, 0)
        self._state_scanned_at = -STATE_SCAN_INTERVAL_S

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
        recovery = self.app.tables.recovery
        return bool(recovery.completed.is_set()) and not recovery.in_recovery

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

    # users

    def _decoded(self, user: str, partition: int, data: bytes | None) -> UserState | None:
        """The partition cache's copy (newest, maybe not flushed yet), else the table's."""
        from pipeline.steps import decode_stored

        cache = self.pipeline.caches.get(partition)
        cached = cache.users.get(user) if cache is not None else None
        if cached is not None:
            state: UserState = cached.state
            return state
        return decode_stored(data).state if data is not None else None

    def lookup(self, user: str) -> tuple[UserState, int] | None:
        partition = self.partition_of(user)
        if partition not in self.active_partitions():
            return None
        state = self._decoded(user, partition, self.pipeline.table.get(user.encode()))
        return None if state is None else (state, self.now_for(partition, state))

    def _local_items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of this worker's active partitions.

        A memory store also holds standby partitions and may keep revoked ones; RocksDB shows
        only actives. Keys are checked unless this worker owns every partition.
        """
        actives = self.active_partitions()
        table = self.pipeline.table
        filtering = len(actives) < self.pipeline.settings.partitions
        for key, value in list(table.items()):
            if value is None:
                continue
            if filtering and self.partition_of(key.decode()) not in actives:
                continue
            yield key, value

    def local_users(self) -> Iterator[tuple[str, UserState, int]]:
        for key, value in self._local_items():
            user = key.decode()
            partition = self.partition_of(user)
            state = self._decoded(user, partition, value)
            if state is not None:
                yield user, state, self.now_for(partition, state)

    # scrape-time metrics

    def state_size(self) -> StateSize:
        now = time.monotonic()
        if now - self._state_scanned_at >= STATE_SCAN_INTERVAL_S:
            users = size = 0
            for _, value in self._local_items():
                users += 1
                size += len(value)
            self._state_size = StateSize(users, size)
            self._state_scanned_at = now
        return self._state_size

    def recovery(self) -> Recovery:
        recovery = self.app.tables.recovery
        return Recovery(bool(recovery.in_recovery), int(recovery.active_remaining_total()))

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """End offset − position for each assigned partition of the pipeline's own topics."""
        consumer = self.app.consumer
        changelogs = set(self.app.tables.changelog_topics)
        # The consumer's read and committed offsets are kept by Faust without a public
        # synchronous accessor; the high water is aiokafka's, refreshed by every fetch.
        read = getattr(consumer, "_read_offset", {})
        committed = getattr(consumer, "_committed_offset", {})
        out: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            if tp.topic in changelogs:
                continue
            try:
                high = consumer.highwater(tp)
            except Exception:  # not fetched yet or not assigned any more
                continue
            last_read = read.get(tp)
            position = last_read + 1 if last_read is not None else committed.get(tp)
            if high is None or position is None:
                continue
            out[(tp.topic, tp.partition)] = max(0, int(high) - int(position))
        return out


def register(app: Any, pipeline: Any, metrics: PipelineMetrics, token: str | None) -> WorkerState:
    """Adds the views to the worker's Faust app and connects the scrape-time metrics."""
    import aiohttp
    from faust.web import View
    from yarl import URL

    worker = WorkerState(app, pipeline, metrics)
    model: Model = pipeline.model
    metrics.lag_provider = worker.consumer_lag
    metrics.state_provider = worker.state_size
    metrics.recovery_provider = worker.recovery

    def respond(view: Any, reply: Reply) -> Any:
        return view.bytes(
            reply.encode(), content_type=JSON, status=reply.status, headers=reply.headers
        )

    async def forward(view: Any, request: Any, base: URL) -> Any:
        """The same request, answered by the worker at `base`."""
        target = base.with_path(request.rel_url.path).with_query(request.rel_url.query)
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            async with app.http_client.get(
                target, headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            ) as response:
                body = await response.read()
                return view.bytes(body, content_type=JSON, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return respond(view, error(502, "owner_unreachable", f"{base}: {exc}"))

    def owner_of(user: str) -> URL | None:
        """The URL of the worker owning `user`, None when it is this one (or unknown)."""
        try:
            url = URL(app.router.key_store(pipeline.table.name, user.encode()))
        except KeyError:
            return None
        own = URL(str(app.conf.canonical_url))
        return None if (url.host, url.port) == (own.host, own.port) else url

    async def user_view(view: Any, request: Any, user: str, render: Any) -> Any:
        denied = check_token(request.headers.get("Authorization"), token)
        if denied is not None:
            return respond(view, denied)
        bad = check_user_id(user)
        if bad is not None:
            return respond(view, bad)
        if not worker.recovered():
            return respond(view, error(503, "recovering", "tables are still being recovered"))
        if ROUTED_HEADER not in request.headers:
            owner = owner_of(user)
            if owner is not None:
                return await forward(view, request, owner)
        if worker.partition_of(user) not in worker.active_partitions():
            return respond(view, error(503, "rebalancing", "the user's partition is moving"))
        return respond(view, user_reply(user, worker.lookup(user), model, render))

    async def peers_top(request: Any, query: TopQuery) -> tuple[list[list[TopEntry]], bool]:
        own = URL(str(app.conf.canonical_url))
        owners = app.assignor.tables_metadata()
        lists: list[list[TopEntry]] = []
        covered: set[int] = set(worker.active_partitions())
        complete = True
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        for url, topics in owners.items():
            peer = URL(url)
            if (peer.host, peer.port) == (own.host, own.port):
                continue
            params = {"n": str(query.n), "local": "1"}
            if query.topic is not None:
                params["topic"] = query.topic
            try:
                async with app.http_client.get(
                    peer.with_path("/top").with_query(params),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
                ) as response:
                    if response.status != 200:
                        raise ValueError(f"status {response.status}")
                    lists.append(entries_from_body(orjson.loads(await response.read())))
                    covered.update(topics.get(worker.changelog, ()))
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                log.warning("/top: no answer from %s: %s", url, exc)
                complete = False
        complete = complete and covered >= set(range(pipeline.settings.partitions))
        return lists, complete

    async def guarded(view: Any, handler: Any) -> Any:
        try:
            return await handler()
        except Exception:  # a bug, never bad input (that is a 4xx above): log it, answer JSON
            log.exception("query API failure")
            return respond(view, error(500, "internal", "see the worker's log"))

    @app.page("/livez")
    class Livez(View):
        async def get(self, request: Any) -> Any:
            return respond(self, Reply(200, {"status": "ok"}))

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Any) -> Any:
            return respond(self, readiness(worker.recovered()))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Any) -> Any:
            return self.bytes(metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    @app.page("/users/{user}")
    class User(View):
        async def get(self, request: Any, user: str) -> Any:
            return await guarded(self, lambda: user_view(self, request, user, user_body))

    @app.page("/users/{user}/explain")
    class Explain(View):
        async def get(self, request: Any, user: str) -> Any:
            return await guarded(self, lambda: user_view(self, request, user, explain_body))

    @app.page("/top")
    class Top(View):
        async def get(self, request: Any) -> Any:
            async def answer() -> Any:
                denied = check_token(request.headers.get("Authorization"), token)
                if denied is not None:
                    return respond(self, denied)
                query = parse_top_query(request.query)
                if isinstance(query, Reply):
                    return respond(self, query)
                if not worker.recovered():
                    return respond(self, error(503, "recovering", "tables are being recovered"))
                local = rank_users(worker.local_users(), query.n, query.topic, model)
                if query.local or ROUTED_HEADER in request.headers:
                    return respond(
                        self, Reply(200, top_body(local, query, model.model_version, True))
                    )
                lists, complete = await peers_top(request, query)
                merged = merge_top([local, *lists], query.n)
                return respond(
                    self, Reply(200, top_body(merged, query, model.model_version, complete))
                )

            return await guarded(self, answer)

    return worker

"""The query API and health endpoints of a worker (issue 4), as thin Faust views over plain
functions that build `Reply`s, so the logic is tested without a broker.

- `GET /users/{id}`, `/users/{id}/explain`: answered by the worker that owns the user's
  partition; any other worker forwards the request there (Faust's router knows who owns which
  changelog partition).
- `GET /top?n=&topic=&at=`: every worker ranks its own users (`local=1`) at one event time,
  which the asked worker picks and passes on; it merges. Each worker ranks from its leader
  boards (`pipeline.leaders`), not by scanning its table.
- `GET /livez`, `/readyz` (ready once table recovery has finished), `/metrics`: never
  authenticated. The query API needs `Authorization: Bearer <INFLUENCE_API_TOKEN>` when the
  token is set.

Scores are read at event time, never the wall clock: a user at its partition's stream clock
(the latest event time seen there, or the user's own latest event if that is later); a ranking
at one time for every user, by default the latest event time any worker has seen.

Routing errors (404 for an unknown path, 405 for a method a path does not serve) have the
API's JSON error shape too (`json_routing_errors`).
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pipeline.codec import key_partition
from pipeline.leaders import Leaders, TopEntry
from pipeline.metrics import PipelineMetrics, Recovery, StateSize
from pipeline.replay import snapshot_record
from scoring import Model, UserState, explain, read_mass, score_of
from scoring.events import MAX_ID_LENGTH, MAX_TS_MS, MIN_TS_MS
from scoring.model import DAY_MS
from scoring.score import reasons, topic_scores

log = logging.getLogger(__name__)

JSON = "application/json"
DEFAULT_TOP = 10
MAX_TOP = 1000
ROUTED_HEADER = "X-Influence-Routed"
"""Set on requests one worker forwards to another: the receiver answers, never forwards again
(two workers that disagree about ownership during a rebalance cannot bounce a request)."""
FORWARD_TIMEOUT_S = 10.0
PEER_AT_TRAIL_MS = 365 * DAY_MS
"""How far a peer's `at` (`local=1`) may trail this worker's stream time: it picked the time
before this worker processed more, or it is catching up after a failover. A year keeps every
exponential of the model finite (the burst's, read a year early, is e^126)."""
INDEX_CHECK_INTERVAL_S = 1.0
"""How often a worker checks that its leader boards are built (after an assignment, once its
tables are recovered, even before any event arrives)."""


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
    at: int | None = None
    """The event time (ms) to rank at; None: the latest the workers have seen."""


def _integer(raw: str, low: int, high: int) -> int | None:
    text = raw.strip()
    if len(text) > 20 or not text.isascii() or not text.isdigit():
        return None  # (a huge number would be refused by int() itself, as an exception)
    value = int(text)
    return value if low <= value <= high else None


def parse_top_query(query: Mapping[str, str]) -> TopQuery | Reply:
    """`n` (1..MAX_TOP, default DEFAULT_TOP), `topic` (a hashtag, `#` and case ignored), `at`
    (an event time in ms, within the times events may have)."""
    raw_n = query.get("n")
    n = DEFAULT_TOP
    if raw_n is not None:
        parsed = _integer(raw_n, 1, MAX_TOP)
        if parsed is None:
            return error(400, "bad_parameter", f"n must be an integer in 1..{MAX_TOP}")
        n = parsed
    raw_at = query.get("at")
    at = None
    if raw_at is not None:
        at = _integer(raw_at, MIN_TS_MS, MAX_TS_MS)
        if at is None:
            return error(
                400, "bad_parameter", f"at must be an event time in ms, {MIN_TS_MS}..{MAX_TS_MS}"
            )
    topic = query.get("topic")
    if topic is not None:
        topic = topic.strip().lstrip("#").lower()
        if not topic or len(topic) > MAX_ID_LENGTH:
            return error(400, "bad_parameter", f"topic must have 1..{MAX_ID_LENGTH} characters")
    local = query.get("local", "0")
    if local not in ("0", "1"):
        return error(400, "bad_parameter", "local must be 0 or 1")
    return TopQuery(n, topic, local == "1", at)


def check_at(at: int | None, stream_time: int | None, trail_ms: int = 0) -> Reply | None:
    """None when a ranking may be read at `at`. A state holds every event up to the stream
    time, so an earlier read would not be the ranking of that moment: refused (409), except
    for a peer's time trailing by at most `trail_ms` (the one time of a merged ranking)."""
    if at is None or stream_time is None or at >= stream_time - trail_ms:
        return None
    return error(
        409,
        "at_before_stream_time",
        f"at={at} is before the stream time {stream_time}: ask at or after it",
    )


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


def rank_users(
    users: Iterable[tuple[str, UserState, int]], n: int, topic: str | None, model: Model
) -> list[TopEntry]:
    """The n best of `users` by score, or by topic score for users who publish `topic`, each
    read at its own time: the brute-force ranking the leader boards must equal."""
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
    entries: list[TopEntry],
    query: TopQuery,
    model_version: str,
    complete: bool,
    as_of: int | None = None,
    stream_time: int | None = None,
) -> dict[str, object]:
    """`as_of`: the one event time every score is read at (None: no event yet);
    `stream_time`: the latest event time the answering workers have seen."""
    return {
        "n": query.n,
        "topic": query.topic,
        "model_version": model_version,
        "complete": complete,
        "as_of": as_of,
        "stream_time": stream_time,
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


def answer_times(body: object) -> tuple[int | None, int | None]:
    """A peer's `local=1` answer: (as_of, stream_time); raises on a malformed answer."""
    if not isinstance(body, dict):
        raise ValueError("not a /top answer")
    times = body.get("as_of"), body.get("stream_time")
    if not all(t is None or type(t) is int for t in times):
        raise ValueError("as_of and stream_time must be integers or null")
    return times


def latest_of(*times: int | None) -> int | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def routing_error(status: int, method: str, path: str) -> Reply:
    """What the web server's own 404 and 405 answers say, in the API's error shape."""
    if status == 405:
        return error(405, "method_not_allowed", f"{method} is not allowed on {path[:300]}")
    return error(404, "not_found", f"no such path: {path[:300]}")


def json_routing_errors() -> Any:
    """An aiohttp middleware: the router's 404 and 405 (plain text by default) as JSON errors,
    keeping the `Allow` header of a 405."""
    from aiohttp import web

    @web.middleware
    async def middleware(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status not in (404, 405):
                raise
            reply = routing_error(exc.status, request.method, request.path)
            allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return web.Response(
                body=reply.encode(), status=exc.status, content_type=JSON, headers=allow
            )

    return middleware


def readiness(recovered: bool) -> Reply:
    if recovered:
        return Reply(200, {"status": "ready"})
    return Reply(503, {"status": "recovering"})


class UserSource(Protocol):
    """Users of the partitions this worker owns, each with the event time to read it at."""

    def lookup(self, user: str) -> tuple[UserState, int] | None: ...


PeerRankings = tuple[list[list[TopEntry]], int | None, bool]
"""The other workers' rankings, the latest stream time they report, whether all answered."""


class Ranker(Protocol):
    """What a ranking needs of a worker (`WorkerState`)."""

    def stream_time(self) -> int | None: ...

    def top(self, n: int, topic: str | None, at: int) -> list[TopEntry]: ...


async def top_answer(
    worker: Ranker,
    query: TopQuery,
    routed: bool,
    ask_peers: Callable[[int | None], Awaitable[PeerRankings]],
    model_version: str,
) -> Reply:
    """One ranking at one event time. Asked by a peer (`routed`: `local=1`), this worker's
    users at the peer's `at`. Asked by a client, at its `at`, else at the latest event time any
    worker reports: the peers are asked at this worker's time, and asked again at theirs if one
    is ahead (two rounds at most), then the rankings are merged."""
    own_time = worker.stream_time()
    if routed:
        refused = check_at(query.at, own_time, PEER_AT_TRAIL_MS)
        if refused is not None:
            return refused
        at = query.at if query.at is not None else own_time
        local = [] if at is None else worker.top(query.n, query.topic, at)
        return Reply(200, top_body(local, query, model_version, True, at, own_time))
    refused = check_at(query.at, own_time)
    if refused is not None:
        return refused
    at = query.at if query.at is not None else own_time
    lists, latest, complete = await ask_peers(at)
    latest = latest_of(own_time, latest)
    if query.at is None and latest is not None and (at is None or latest > at):
        at = latest
        lists, again, complete = await ask_peers(at)
        latest = latest_of(latest, again)
    local = [] if at is None else worker.top(query.n, query.topic, at)
    merged = merge_top([local, *lists], query.n)
    return Reply(200, top_body(merged, query, model_version, complete, at, latest))


# --- Faust wiring: everything below needs a running worker --------------------------------


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

    def written(self, partition: int, user: str) -> UserState | None:
        """The user as last written to the table, which its leader-board bound was computed
        from: the cache's copy unless it holds changes not flushed yet, else the table's."""
        from pipeline.steps import decode_stored

        cache = self.pipeline.caches.get(partition)
        if cache is not None and user not in cache.dirty:
            cached = cache.users.get(user)
            if cached is not None:
                state: UserState = cached.state
                return state
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
        if getattr(self.app, "rebalancing", False) or not self.recovered():
            return False
        pipeline = self.pipeline
        async with pipeline.lock:  # no batch runs meanwhile, as when a batch scans
            if pipeline.watched is None and not getattr(self.app, "rebalancing", False):
                pipeline.watched = await pipeline.scan_watched_users()
        return self.indexed()

    def top(self, n: int, topic: str | None, at: int) -> list[TopEntry]:
        """This worker's n best at event time `at`, from the leader boards."""
        leaders: Leaders = self.pipeline.leaders
        return leaders.top(self.active_partitions(), n, topic, at, self.written)

    # scrape-time metrics

    def state_size(self) -> StateSize:
        """Users and stored bytes of the active partitions, as the leader boards count them
        (O(partitions); complete once the boards are built)."""
        actives = self.active_partitions()
        leaders: Leaders = self.pipeline.leaders
        return StateSize(leaders.users(actives), leaders.state_bytes(actives))

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
    app.web.web_app.middlewares.append(json_routing_errors())

    @app.timer(INDEX_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def build_leader_boards() -> None:
        await worker.ensure_indexed()

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

    async def ask_peer(
        url: str, partitions: Iterable[int], params: dict[str, str], headers: dict[str, str]
    ) -> tuple[list[TopEntry], int | None, set[int]] | None:
        """A peer's own ranking (`local=1`), its stream time and the partitions it covers."""
        try:
            async with app.http_client.get(
                URL(url).with_path("/top").with_query(params),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            ) as response:
                if response.status != 200:
                    raise ValueError(f"status {response.status}")
                body = orjson.loads(await response.read())
            as_of, stream_time = answer_times(body)
            if "at" in params and as_of != int(params["at"]):
                raise ValueError(f"ranked at {as_of}, not at {params['at']}")
            return entries_from_body(body), stream_time, set(partitions)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning("/top: no answer from %s: %s", url, exc)
            return None

    async def peers_top(request: Any, query: TopQuery, at: int | None) -> PeerRankings:
        """Every other worker's ranking at `at` (their own latest time if None), asked at
        once: (rankings, the latest stream time they report, whether every partition is in)."""
        own = URL(str(app.conf.canonical_url))
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        params = {"n": str(query.n), "local": "1"}
        if query.topic is not None:
            params["topic"] = query.topic
        if at is not None:
            params["at"] = str(at)
        asks = []
        for url, topics in app.assignor.tables_metadata().items():
            peer = URL(url)
            if (peer.host, peer.port) != (own.host, own.port):
                asks.append(ask_peer(url, topics.get(worker.changelog, ()), params, headers))
        answers = await asyncio.gather(*asks)
        covered: set[int] = set(worker.active_partitions())
        lists: list[list[TopEntry]] = []
        latest: int | None = None
        for answer in answers:
            if answer is not None:
                entries, stream_time, partitions = answer
                lists.append(entries)
                latest = latest_of(latest, stream_time)
                covered |= partitions
        complete = all(a is not None for a in answers)
        complete = complete and covered >= set(range(pipeline.settings.partitions))
        return lists, latest, complete

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
            body, content_type = metrics.exposition(request.headers.get("Accept"))
            return self.bytes(body, headers={"Content-Type": content_type})

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
                if not await worker.ensure_indexed():
                    return respond(self, error(503, "rebalancing", "partitions are moving"))
                routed = query.local or ROUTED_HEADER in request.headers

                async def ask(at: int | None) -> PeerRankings:
                    return await peers_top(request, query, at)

                reply = await top_answer(worker, query, routed, ask, model.model_version)
                return respond(self, reply)

            return await guarded(self, answer)

    return worker

"""The query API's logic without a broker: authentication, parameters, 404/400, rankings and
their merge, and reads at the partition's event time (the views only wrap these)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipeline.api import scrape
from pipeline.api.read_model import WorkerState
from pipeline.api.replies import (
    JSON,
    Reply,
    check_token,
    explain_body,
    readiness,
    routing_error,
    user_body,
    user_reply,
)
from pipeline.api.top import (
    DEFAULT_TOP,
    MAX_TOP,
    PEER_AT_TRAIL_MS,
    TopQuery,
    answer_times,
    check_at,
    entries_from_body,
    latest_of,
    merge_top,
    parse_top_query,
    rank_users,
    top_answer,
    top_body,
)
from pipeline.api.views import json_routing_errors
from pipeline.engine import Engine
from pipeline.leaders import Leaders, TopEntry
from pipeline.metrics import PipelineMetrics
from pipeline.native_engine import make_engine
from pipeline.replay import top_scores
from pipeline.steps import Stored, UserCache, decode_stored, encode_stored
from pipeline.synthetic import GeneratorConfig, generate
from scoring import DecayWatch, Event, Model, parse_event, read_mass, score_of
from scoring.events import MAX_TS_MS, MIN_TS_MS
from scoring.model import DAY_MS
from tests.conftest import T0, Events


def test_no_token_configured_lets_everything_through() -> None:
    assert check_token(None, None) is None
    assert check_token("Bearer whatever", "") is None


def test_a_configured_token_must_be_presented_as_bearer() -> None:
    assert check_token("Bearer s3cret", "s3cret") is None
    assert check_token("bearer s3cret", "s3cret") is None
    for header in (None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret", "Bearer s3cre"):
        reply = check_token(header, "s3cret")
        assert isinstance(reply, Reply) and reply.status == 401, header
        assert reply.body == {"error": "unauthorized", "detail": reply.body["detail"]}  # type: ignore[index]
        assert reply.headers is not None and "Bearer" in reply.headers["WWW-Authenticate"]


def test_top_parameters() -> None:
    assert parse_top_query({}) == TopQuery(DEFAULT_TOP, None, False)
    assert parse_top_query({"n": "3", "topic": "#Higgs"}) == TopQuery(3, "higgs", False)
    assert parse_top_query({"n": str(MAX_TOP), "local": "1"}) == TopQuery(MAX_TOP, None, True)
    for bad in (
        {"n": "0"},
        {"n": "-1"},
        {"n": "2.5"},
        {"n": "ten"},
        {"n": ""},
        {"n": str(MAX_TOP + 1)},
        {"n": "١٢"},  # Arabic-Indic digits: isdigit() is not enough
        {"n": "1" * 5000},  # more digits than int() converts
        {"topic": ""},
        {"topic": "#"},
        {"topic": "x" * 300},
        {"local": "yes"},
        {"local": "-1"},
    ):
        reply = parse_top_query(bad)
        assert isinstance(reply, Reply) and reply.status == 400, bad
        assert reply.body["error"] == "bad_parameter"  # type: ignore[index]


@given(st.dictionaries(st.sampled_from(["n", "topic", "local", "x"]), st.text(max_size=20)))
def test_any_query_is_answered_never_raised(query: dict[str, str]) -> None:
    parsed = parse_top_query(query)
    if isinstance(parsed, Reply):
        assert parsed.status == 400
        parsed.encode()
    else:
        assert 1 <= parsed.n <= MAX_TOP


def _engine(model: Model, ev: Events) -> Engine:
    """`star` publishes #higgs (three tweets on three days, retweeted by 30 fans), `mid` and
    `low` are only mentioned, the fans receive nothing."""
    engine = Engine(model)
    stream = []
    for day in range(3):
        stream.append(ev("tweet", "star", day=day, tweet_id=f"t{day}", hashtags=["higgs"]))
        for i in range(30):
            if i % 3 == day:
                stream.append(
                    ev(
                        "retweet",
                        f"fan{i}",
                        "star",
                        day=day,
                        hour=1 + i / 10,
                        ref_tweet_id=f"t{day}",
                        ref_hashtags=["higgs"],
                    )
                )
    for i in range(5):
        stream.append(ev("mention", f"fan{i}", "mid", day=2, hour=5 + i / 10))
    stream.append(ev("mention", "fan1", "low", day=2, hour=6))
    for event in stream:
        engine.process(event)
    return engine


def test_user_answers(model: Model, ev: Events) -> None:
    engine = _engine(model, ev)
    assert engine.now is not None
    state = engine.states["star"]
    found = user_reply("star", (state, engine.now), model)
    assert found.status == 200
    body: Any = found.body
    assert body["user"] == "star" and body["as_of"] == engine.now
    assert body["score"] == score_of(read_mass(state, engine.now, model), model)
    assert body["reasons"] and body["reasons"][0]["code"] == "retweets"
    assert body["counts"]["retweet"] == 30
    assert body["model_version"] == model.model_version
    assert user_reply("nobody", None, model).status == 404
    assert user_reply("x" * 257, (state, engine.now), model).status == 400
    explained: Any = user_reply("star", (state, engine.now), model, explain_body).body
    assert explained["counts"]["retweet"] == 30 and len(explained["top_contributors"]) > 0


def test_scores_are_read_at_the_given_event_time(model: Model, ev: Events) -> None:
    """Later stream time means decay: the answer depends on event time, not the wall clock."""
    engine = _engine(model, ev)
    assert engine.now is not None
    state = engine.states["star"]
    now_body: Any = user_body("star", state, engine.now, model)
    later: Any = user_body("star", state, engine.now + 60 * DAY_MS, model)
    assert later["score"] < now_body["score"]
    assert later["as_of"] == engine.now + 60 * DAY_MS


def test_rankings_overall_and_by_topic(model: Model, ev: Events) -> None:
    engine = _engine(model, ev)
    assert engine.now is not None
    users = [(u, s, engine.now) for u, s in engine.states.items()]
    top = rank_users(users, 2, None, model)
    assert [e.user for e in top] == ["star", "mid"]
    assert top[0].score > top[1].score and top[0].topic_score is None
    everyone = rank_users(users, 100, None, model)
    assert {e.user for e in everyone} == {"star", "mid", "low"}  # fans never received anything
    by_topic = rank_users(users, 5, "higgs", model)
    assert [e.user for e in by_topic] == ["star"] and by_topic[0].topic_score is not None
    assert rank_users(users, 5, "nothing-here", model) == []


def test_merging_rankings_of_several_workers() -> None:
    a = [TopEntry("a", 90.0, None), TopEntry("c", 50.0, None)]
    b = [TopEntry("b", 70.0, None), TopEntry("a", 90.0, None), TopEntry("d", 50.0, None)]
    merged = merge_top([a, b], 3)
    assert [e.user for e in merged] == ["a", "b", "c"]  # ties broken by user id, "a" once
    topic = [TopEntry("x", 10.0, 80.0), TopEntry("y", 90.0, 20.0)]
    assert [e.user for e in merge_top([topic], 2)] == ["x", "y"]


def test_a_peer_answer_round_trips() -> None:
    entries = [TopEntry("a", 90.0, None), TopEntry("b", 70.5, 33.0)]
    reply = Reply(200, top_body(entries, TopQuery(2, None, True), "v", True))
    assert entries_from_body(orjson.loads(reply.encode())) == entries


def test_readiness() -> None:
    assert readiness(True) == Reply(200, {"status": "ready"})
    assert readiness(False) == Reply(503, {"status": "recovering"})


class TP(NamedTuple):
    topic: str
    partition: int


def _worker(
    engine: Engine,
    partitions: int,
    active: set[int],
    clocks: dict[int, Any],
    metrics: PipelineMetrics | None = None,
) -> Any:
    """A `WorkerState` over a stub pipeline whose table holds the engine's users, encoded, and
    whose leader boards were fed by the table scan that follows an assignment."""
    table = {u.encode(): encode_stored(Stored(s)) for u, s in engine.states.items()}

    class Table(dict[bytes, bytes]):
        name = "users"
        changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-users-changelog")

    tps = {TP("app-users-changelog", p) for p in active}
    leaders = Leaders(partitions, engine.model)
    for key, value in table.items():
        leaders.scanned(key, value)
    pipeline = SimpleNamespace(
        table=Table(table),
        caches={},
        clocks=clocks,
        settings=SimpleNamespace(partitions=partitions),
        leaders=leaders,
        watched={},
        lock=asyncio.Lock(),
    )
    app = SimpleNamespace(
        assignor=SimpleNamespace(assigned_actives=lambda: tps, assigned_standbys=lambda: set())
    )
    return WorkerState(app, pipeline, metrics or PipelineMetrics("v"))


def test_a_worker_answers_for_its_own_partitions_at_their_stream_time(
    model: Model, ev: Events
) -> None:
    engine = _engine(model, ev)
    assert engine.now is not None
    probe = _worker(engine, 4, set(), {})
    star_partition = probe.partition_of("star")
    later = engine.now + 30 * DAY_MS
    clock = DecayWatch(now=later)
    owner = _worker(engine, 4, {star_partition}, {star_partition: clock})
    found = owner.lookup("star")
    assert found is not None and found[1] == later  # the partition's clock, not the user's
    other = _worker(engine, 4, set(range(4)) - {star_partition}, {})
    assert other.lookup("star") is None
    # The latest event seen in the partition, when later than the decay clock.
    seen = PipelineMetrics("v")
    seen.event_time(later + 5, partition=star_partition)
    seen.event_time(later + 99, partition=(star_partition + 1) % 4)  # another partition's
    found = _worker(engine, 4, {star_partition}, {star_partition: clock}, seen).lookup("star")
    assert found is not None and found[1] == later + 5
    # No clock yet for the partition (just assigned): the user's own latest event time.
    fresh = _worker(engine, 4, {star_partition}, {})
    found = fresh.lookup("star")
    assert found is not None and found[1] == engine.states["star"].last_ts
    mine = {u for u in engine.states if owner.partition_of(u) == star_partition}
    size = scrape.state_size(owner)
    assert size.users == len(mine) and size.state_bytes > 0
    everyone = scrape.state_size(_worker(engine, 4, set(range(4)), {}))
    assert everyone.users == len(engine.states)
    assert everyone.state_bytes == sum(
        len(encode_stored(Stored(s))) for s in engine.states.values()
    )
    # A user changed in the running batch is read from the partition's cache, not the table;
    # a ranking reads users as last written (their bound was computed from that).
    newer = Engine(model)
    newer.process(ev("mention", "someone", "star", day=3))
    changed = owner.pipeline.caches[star_partition] = UserCache({})
    changed.users["star"] = Stored(newer.states["star"])
    changed.mark("star")
    found = owner.lookup("star")
    assert found is not None and found[0] is newer.states["star"]
    written = owner.written(star_partition, "star")
    assert written is not None and written is not newer.states["star"]
    assert written.last_ts == engine.states["star"].last_ts


def test_ready_only_once_recovery_has_completed(model: Model, ev: Events) -> None:
    worker = _worker(_engine(model, ev), 4, {0}, {})

    class Completed:
        def __init__(self, done: bool) -> None:
            self.done = done

        def is_set(self) -> bool:
            return self.done

    for done, running, ready in ((False, False, False), (True, True, False), (True, False, True)):
        recovery = SimpleNamespace(
            completed=Completed(done), in_recovery=running, active_remaining_total=lambda: 7
        )
        worker.app.tables = SimpleNamespace(recovery=recovery)
        assert worker.recovered() is ready
        assert scrape.recovery(worker.app).in_progress is running
        assert scrape.recovery(worker.app).remaining_messages == 7


def test_consumer_lag_is_end_offset_minus_position(model: Model, ev: Events) -> None:
    worker = _worker(_engine(model, ev), 4, {0}, {})
    tweets, mentions, changelog = TP("tweets", 0), TP("mentions", 1), TP("app-users-changelog", 0)
    worker.app.tables = SimpleNamespace(changelog_topics={"app-users-changelog"})
    worker.app.consumer = SimpleNamespace(
        assignment=lambda: {tweets, mentions, changelog, TP("retweets", 2)},
        highwater=lambda tp: {tweets: 120, mentions: 40, changelog: 999}.get(tp),
        _read_offset={tweets: 99, changelog: 5},  # last offset read
        _committed_offset={mentions: 31},  # nothing read yet: the committed position
    )
    assert scrape.consumer_lag(worker.app) == {("tweets", 0): 20, ("mentions", 1): 9}


# --- GET /top: one ranking at one event time, from the leader boards ----------------------


def _generated(model: Model) -> Engine:
    """200 users over 8 days, with published topics and plenty of tied scores."""
    engine = Engine(model)
    for record in generate(GeneratorConfig(users=200, days=8, seed=5)):
        event = parse_event(record)
        assert isinstance(event, Event)
        engine.process(event)
    return engine


def _split(engine: Engine, partitions: int, owners: list[set[int]], cached: bool) -> list[Any]:
    """Workers owning `owners` partitions; each partition's clock is its latest event. With
    `cached`, the partition caches hold the engine's own (clean) states, as a worker holds
    the users it wrote; otherwise every read decodes the table."""
    workers = []
    for active in owners:
        metrics = PipelineMetrics("v")
        worker = _worker(engine, partitions, active, {}, metrics)
        for user, state in engine.states.items():
            p = worker.partition_of(user)
            if p in active:
                metrics.event_time(state.last_ts, partition=p)
                if cached:
                    cache = worker.pipeline.caches.setdefault(p, UserCache({}))
                    cache.users[user] = Stored(state)
        workers.append(worker)
    return workers


def _peers(workers: list[Any], query: TopQuery, asked: list[int | None]) -> Any:
    """`ask_peers` of the first worker: the others answer `local=1` at the time given."""

    async def ask(at: int | None) -> tuple[list[list[TopEntry]], int | None, bool]:
        asked.append(at)
        lists, latest = [], None
        for peer in workers[1:]:
            local = TopQuery(query.n, query.topic, True, at)
            reply = await top_answer(peer, local, True, ask, "v")
            assert reply.status == 200, reply
            body: Any = orjson.loads(reply.encode())
            assert at is None or body["as_of"] == at
            lists.append(entries_from_body(body))
            latest = latest_of(latest, body["stream_time"])
        return lists, latest, True

    return ask


def _top(workers: list[Any], query: TopQuery, asked: list[int | None] | None = None) -> Any:
    ask = _peers(workers, query, [] if asked is None else asked)
    return asyncio.run(top_answer(workers[0], query, False, ask, "v"))


def test_top_is_the_replays_ranking_at_the_streams_last_event_time(model: Model) -> None:
    """Two workers, each behind the other on some partitions: the asked one ranks at the
    latest event time either has seen (a second round when the peer is ahead), which is the
    replay's time, and the merged ranking is the replay's `--top`, compiled core included."""
    engine = _generated(model)
    assert engine.now is not None
    native = make_engine(model, "native")
    for record in generate(GeneratorConfig(users=200, days=8, seed=5)):
        event = parse_event(record)
        assert isinstance(event, Event)
        native.process(event)
    assert native.now == engine.now
    behind = 0
    for first in ({0}, {1}, {2}, {3}, {0, 1}, {0, 2}, {0, 3}):
        workers = _split(engine, 4, [first, set(range(4)) - first], cached=True)
        times = [w.stream_time() for w in workers]
        assert max(t for t in times if t is not None) == engine.now
        behind += times[0] != engine.now
        for n in (1, 7, 20, 150):
            asked: list[int | None] = []
            reply = _top(workers, TopQuery(n, None, False), asked)
            body: Any = reply.body
            assert reply.status == 200 and body["as_of"] == engine.now, body
            assert body["stream_time"] == engine.now and body["complete"] is True
            assert asked == ([times[0], engine.now] if times[0] != engine.now else [engine.now])
            ranked = [(u["score"], u["user"]) for u in body["users"]]
            assert ranked == top_scores(engine, engine.now, n)
            assert ranked == top_scores(native, engine.now, n)
    assert behind >= 2, "the asked worker was behind the other in some splits"
    scores = [s for s, _ in top_scores(engine, engine.now, 150)]
    assert len(set(scores)) < len(scores), "the stream has ties"


def test_top_at_a_given_time_and_by_topic_matches_every_user_read_then(model: Model) -> None:
    engine = _generated(model)
    assert engine.now is not None
    states = [(u, s) for u, s in engine.states.items()]
    topics = {t.topic for _, s in states for t in rank_topics(s, engine.now, model)}
    assert topics, "the generated stream publishes topics"
    for cached in (True, False):
        workers = _split(engine, 4, [{0, 3}, {1, 2}], cached)
        for at in (engine.now, engine.now + 1, engine.now + 5 * DAY_MS):
            for topic in (None, *sorted(topics)[:3]):
                asked: list[int | None] = []
                reply = _top(workers, TopQuery(12, topic, False, at), asked)
                body: Any = reply.body
                assert reply.status == 200 and body["as_of"] == at and asked == [at]
                users = [(u, s, at) for u, s in states]
                if not cached:  # the workers read what the table holds
                    users = [
                        (u, decode_stored(encode_stored(Stored(s))).state, at) for u, s in states
                    ]
                expected = [e.as_dict() for e in rank_users(users, 12, topic, model)]
                assert body["users"] == expected, (cached, at, topic)
                if topic is not None:
                    assert expected and all(e["topic_score"] is not None for e in expected)


def rank_topics(state: Any, at: int, model: Model) -> list[Any]:
    from scoring.score import topic_scores

    return topic_scores(state, read_mass(state, at, model), model)


def test_top_refuses_a_time_before_the_stream_time_and_bad_times(model: Model) -> None:
    engine = _generated(model)
    assert engine.now is not None
    workers = _split(engine, 4, [set(range(4))], cached=False)
    own = workers[0].stream_time()
    assert own == engine.now
    early = _top(workers, TopQuery(5, None, False, own - 1))
    assert early.status == 409 and early.body["error"] == "at_before_stream_time"  # type: ignore[index]
    # A peer asked at a time it has passed still answers, for one ranking at one time...
    peer = asyncio.run(
        top_answer(workers[0], TopQuery(5, None, True, own - DAY_MS), True, _none, "v")
    )
    assert peer.status == 200 and peer.body["as_of"] == own - DAY_MS  # type: ignore[index]
    users = [(u, s, own - DAY_MS) for u, s in engine.states.items()]
    users = [(u, decode_stored(encode_stored(Stored(s))).state, t) for u, s, t in users]
    assert peer.body["users"] == [e.as_dict() for e in rank_users(users, 5, None, model)]  # type: ignore[index]
    # ... unless it trails by more than a year.
    far = TopQuery(5, None, True, own - PEER_AT_TRAIL_MS - 1)
    assert asyncio.run(top_answer(workers[0], far, True, _none, "v")).status == 409
    assert (
        check_at(None, own) is None and check_at(own, None) is None and check_at(own, own) is None
    )
    # Nothing seen anywhere yet: an empty ranking, at no time.
    empty = _split(Engine(model), 4, [set(range(4))], cached=False)
    reply = _top(empty, TopQuery(5, None, False))
    assert reply.status == 200 and reply.body["users"] == [] and reply.body["as_of"] is None  # type: ignore[index]


async def _none(at: int | None) -> tuple[list[list[TopEntry]], int | None, bool]:
    raise AssertionError("a peer's request is never forwarded")


def test_top_time_parameter() -> None:
    assert parse_top_query({"at": str(T0)}) == TopQuery(DEFAULT_TOP, None, False, T0)
    assert parse_top_query({"at": f" {MIN_TS_MS} "}) == TopQuery(
        DEFAULT_TOP, None, False, MIN_TS_MS
    )
    for bad in (
        "",
        "x",
        "-1",
        "1.5",
        "0",
        str(MIN_TS_MS - 1),
        str(MAX_TS_MS + 1),
        "١٢",
        "9" * 5000,
    ):
        reply = parse_top_query({"at": bad})
        assert isinstance(reply, Reply) and reply.status == 400, bad


def test_peer_answers_carry_their_times() -> None:
    body = top_body([TopEntry("a", 2.0, None)], TopQuery(1, None, True, 5), "v", True, 5, 9)
    decoded = orjson.loads(Reply(200, body).encode())
    assert answer_times(decoded) == (5, 9) and entries_from_body(decoded)[0].user == "a"
    for bad in ({"as_of": "5", "stream_time": None}, {"as_of": 1.5}, [1]):
        try:
            answer_times(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert latest_of(None, 3, None, 7) == 7 and latest_of() is None


def test_the_boards_are_built_by_the_scan_when_no_event_ran_it(model: Model) -> None:
    """After an assignment with no traffic yet, the first /top (or the timer) runs the
    table scan a partition's first event would run, under the batch lock, once recovered."""
    engine = _engine(model, Events())
    worker = _worker(engine, 4, set(range(4)), {})
    pipeline = worker.pipeline
    pipeline.watched = None
    pipeline.leaders.clear()
    scans: list[bool] = []

    async def scan() -> dict[int, dict[str, None]]:
        scans.append(pipeline.lock.locked())
        for key, value in pipeline.table.items():
            pipeline.leaders.scanned(key, value)
        return {}

    pipeline.scan_watched_users = scan
    recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True), in_recovery=False)
    worker.app.tables = SimpleNamespace(recovery=recovery)
    worker.app.rebalancing = True
    assert asyncio.run(worker.ensure_indexed()) is False and scans == []
    worker.app.rebalancing = False
    assert scrape.state_size(worker).users == 0
    assert asyncio.run(worker.ensure_indexed()) is True and scans == [True]
    assert asyncio.run(worker.ensure_indexed()) is True and scans == [True]
    assert scrape.state_size(worker).users == len(engine.states)


def test_routing_errors_have_the_api_error_shape() -> None:
    """aiohttp's own 404 and 405 are plain text: the middleware answers JSON (issue 11 #7)."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    assert routing_error(404, "GET", "/nope").body == {
        "error": "not_found",
        "detail": "no such path: /nope",
    }

    async def run() -> list[tuple[int, str, Any, str | None]]:
        app = web.Application(middlewares=[json_routing_errors()])

        async def top(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        async def broken(request: web.Request) -> web.Response:
            raise web.HTTPForbidden()

        app.router.add_get("/top", top)
        app.router.add_get("/forbidden", broken)
        out = []
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for method, path in (
                ("GET", "/nope"),
                ("POST", "/top"),
                ("GET", "/top"),
                ("GET", "/forbidden"),
            ):
                response = await client.request(method, path)
                body = await response.read()
                kind = response.headers.get("Content-Type", "")
                out.append((response.status, kind, body, response.headers.get("Allow")))
        return out

    missing, method, fine, forbidden = asyncio.run(run())
    assert missing[0] == 404 and missing[1].startswith(JSON)
    assert orjson.loads(missing[2]) == {"error": "not_found", "detail": "no such path: /nope"}
    assert method[0] == 405 and method[1].startswith(JSON)
    assert orjson.loads(method[2])["error"] == "method_not_allowed"
    assert method[3] is not None and "GET" in method[3]
    assert fine[0] == 200 and orjson.loads(fine[2]) == {"ok": True}
    assert forbidden[0] == 403 and not forbidden[1].startswith(JSON)  # other statuses untouched

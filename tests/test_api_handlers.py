"""The query API's logic without a broker: authentication, parameters, 404/400, rankings and
their merge, and reads at the partition's event time (the views only wrap these)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from pipeline.api import (
    DEFAULT_TOP,
    MAX_TOP,
    Reply,
    TopEntry,
    TopQuery,
    WorkerState,
    check_token,
    entries_from_body,
    explain_body,
    merge_top,
    parse_top_query,
    rank_users,
    readiness,
    top_body,
    user_body,
    user_reply,
)
from pipeline.engine import Engine
from pipeline.metrics import PipelineMetrics
from pipeline.steps import Stored, encode_stored
from scoring import DecayWatch, Model, read_mass, score_of
from scoring.model import DAY_MS
from tests.conftest import Events


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
    import orjson

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
    table = {u.encode(): encode_stored(Stored(s)) for u, s in engine.states.items()}

    class Table(dict[bytes, bytes]):
        name = "users"
        changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-users-changelog")

    tps = {TP("app-users-changelog", p) for p in active}
    pipeline = SimpleNamespace(
        table=Table(table),
        caches={},
        clocks=clocks,
        settings=SimpleNamespace(partitions=partitions),
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
    everyone = {u for u, _, _ in _worker(engine, 4, set(range(4)), {}).local_users()}
    assert everyone == set(engine.states)
    mine = {u for u, _, _ in owner.local_users()}
    assert "star" in mine and all(owner.partition_of(u) == star_partition for u in mine)
    # A user changed in the running batch is read from the partition's cache, not the table.
    newer = Engine(model)
    newer.process(ev("mention", "someone", "star", day=3))
    owner.pipeline.caches[star_partition] = SimpleNamespace(
        users={"star": Stored(newer.states["star"])}
    )
    found = owner.lookup("star")
    assert found is not None and found[0] is newer.states["star"]
    size = owner.state_size()
    assert size.users == len(mine) and size.state_bytes > 0


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
        assert worker.recovery().in_progress is running
        assert worker.recovery().remaining_messages == 7


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
    assert worker.consumer_lag() == {("tweets", 0): 20, ("mentions", 1): 9}

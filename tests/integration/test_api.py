"""A worker's HTTP side on the real broker: /metrics after real processing, /livez and /readyz,
the query API (200, 404, 400, 401, routing between two workers, /top across partitions),
schemathesis against docs/openapi.yaml, and real topic output against the JSON Schemas."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from pipeline.api.replies import explain_body, user_body
from pipeline.api.top import rank_users
from pipeline.engine import Engine
from pipeline.native_engine import resolve_core
from pipeline.settings import core_from_env
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Event, Model, parse_event
from scoring.events import Invalid
from scoring.model import DAY_MS
from tests.integration.pipeline_kit import (
    Deployment,
    WorkerProcess,
    produce_events,
    produce_raw,
    read_topic,
    read_users,
    wait_until_processed,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
READY_TIMEOUT_S = 120.0
BAD_MESSAGES = [b"{not json", b'{"id":"b1","kind":"like","ts":1,"actor":"a"}', b"[]"]
TOKEN = "t0ken-for-tests"
SCHEMATHESIS_EXAMPLES = 25
OPERATIONS = 7
"""GET /users/{user}, /users/{user}/explain, /top, /livez, /readyz, /metrics."""
SUBSCRIBE = (sys.executable, "-m", "pipeline.cli", "subscribe")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    content_type: str


def get(port: int, path: str, token: str | None = None, method: str = "GET") -> Answer:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, ctype = response.read(), response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        raw, status, ctype = exc.read(), exc.code, exc.headers["Content-Type"]
    body = orjson.loads(raw) if ctype and ctype.startswith("application/json") else raw.decode()
    return Answer(status, body, ctype or "")


def wait_ready(worker: WorkerProcess, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.tail()
        try:
            if get(worker.port, "/readyz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"worker not ready within {timeout}s:\n{worker.tail()}")


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in values.items() if n == name)


def by_label(values: dict[Any, float], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = Counter()
    for (n, labels), v in values.items():
        if n == name:
            out[dict(labels)[label]] += v
    return dict(out)


@pytest.fixture(scope="module")
def stream(model: Model) -> tuple[list[Event], Engine]:
    events = []
    for record in generate(GeneratorConfig(users=200, days=8, seed=5)):
        event = parse_event(record)
        assert not isinstance(event, Invalid)
        events.append(event)
    engine = Engine(model)
    for event in events:
        engine.process(event)
    return events, engine


@pytest.fixture(autouse=True)
def no_api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers inherit the test's environment: no API token unless a test sets one."""
    monkeypatch.delenv("INFLUENCE_API_TOKEN", raising=False)


def run(deployment: Deployment, events: list[Event], workers: list[WorkerProcess]) -> None:
    for worker in workers:
        wait_ready(worker)
    asyncio.run(produce_events(deployment.bootstrap, deployment.topics, events))
    asyncio.run(
        produce_raw(
            deployment.bootstrap,
            deployment.topics.retweets,
            [(b"a", value) for value in BAD_MESSAGES],
        )
    )
    wait_until_processed(deployment)


def test_one_worker_metrics_health_and_queries(
    deploy: Any, stream: tuple[list[Event], Engine], model: Model, tmp_path: Path
) -> None:
    events, engine = stream
    assert engine.stats.duplicates == 0  # so every valid event counts as consumed
    deployment = deploy(4)
    worker = deployment.start_worker(tmp_path)
    run(deployment, events, [worker])
    port = worker.port

    assert get(port, "/livez") == Answer(200, {"status": "ok"}, "application/json")
    assert get(port, "/readyz").body == {"status": "ready"}

    # /metrics: what was processed, as the contract names it.
    changes = read_topic(deployment.bootstrap, deployment.topics.score_changes)
    time.sleep(1.0)
    scraped = get(port, "/metrics")
    assert scraped.status == 200 and scraped.content_type.startswith("text/plain")
    values = metric_values(scraped.body)
    consumed = by_label(values, "influence_events_consumed_total", "kind")
    assert consumed == dict(Counter(e.kind for e in events)), consumed
    topics = by_label(values, "influence_events_consumed_total", "topic")
    assert set(topics) <= set(deployment.topics.inputs)
    assert by_label(values, "influence_events_invalid_total", "reason") == {
        "bad_json": 1,
        "unknown_kind": 1,
        "not_an_object": 1,
    }
    assert total(values, "influence_dead_letters_total") == len(BAD_MESSAGES)
    assert total(values, "influence_score_changes_total") == len(changes)
    causes = by_label(values, "influence_score_changes_total", "cause")
    assert causes == dict(Counter(orjson.loads(v)["cause"] for _, v, _ in changes if v))
    assert values[("influence_last_event_time_seconds", ())] == max(e.ts for e in events) / 1000
    assert values[("influence_event_time_lag_seconds", ())] > 0
    assert values[("influence_users_tracked", ())] == len(engine.states)
    assert values[("influence_state_bytes", ())] > 0
    core = resolve_core(core_from_env(), needs="NativeUsers")  # the worker's, from the same env
    worker_info = (("core", core), ("version", model.model_version))
    assert values[("influence_model_info", worker_info)] == 1
    assert values[("influence_up", ())] == 1
    assert values[("influence_recovery_in_progress", ())] == 0
    assert values[("influence_rebalances_total", ())] >= 1
    assert values[("influence_processing_latency_seconds_count", ())] > 0
    lag = {
        dict(labels)["topic"]
        for (name, labels), _ in values.items()
        if name == "influence_consumer_lag_messages"
    }
    assert set(deployment.topics.inputs) <= lag
    assert all(
        v == 0
        for (name, labels), v in values.items()
        if name == "influence_consumer_lag_messages"
        and dict(labels)["topic"] in deployment.topics.inputs
    )

    # /users/{id}: the worker's stored state (its changelog), read at the partition's event
    # time; received counts are exact, as the embedded engine's.
    stored = read_users(deployment)
    assert set(stored) == set(engine.states)
    latest = max(e.ts for e in events)
    for user in sorted(engine.states)[:40]:
        answer = get(port, f"/users/{urllib.parse.quote(user)}")
        assert answer.status == 200, (user, answer)
        body = answer.body
        state = stored[user].state
        assert state.last_ts <= body["as_of"] <= latest
        assert same(body, user_body(user, state, body["as_of"], model)), user
        assert list(body["counts"].values()) == _counts(engine, user)
        explained = get(port, f"/users/{urllib.parse.quote(user)}/explain").body
        assert same(explained, explain_body(user, state, body["as_of"], model)), user
    assert get(port, "/users/nobody-at-all").status == 404
    assert get(port, "/users/nobody-at-all").body["error"] == "unknown_user"
    assert get(port, "/users/nobody/explain").status == 404
    assert get(port, "/users/" + "x" * 300).status == 400

    # /top: every user read at one time, the stream's last event time (the replay's), ranked
    # as the stored users rank (tests/test_api_handlers.py: exactly the replay's --top given
    # the same states); by topic, only publishers.
    everyone = {u: get(port, f"/users/{urllib.parse.quote(u)}").body for u in engine.states}
    top = get(port, "/top?n=7").body
    assert top["complete"] is True and len(top["users"]) == 7
    assert top["as_of"] == top["stream_time"] == latest
    assert ranked_like(top["users"], stored, latest, model)
    ranked = [e["user"] for e in top["users"]]
    later = latest + 30 * DAY_MS  # decay alone, no event
    projected = get(port, f"/top?n=7&at={later}").body
    assert projected["as_of"] == later and projected["stream_time"] == latest
    assert ranked_like(projected["users"], stored, later, model)
    now_scores = {e["user"]: e["score"] for e in top["users"]}
    assert all(e["score"] < now_scores.get(e["user"], 101) for e in projected["users"])
    early = get(port, f"/top?at={latest - 1}")
    assert early.status == 409 and early.body["error"] == "at_before_stream_time"
    published = Counter(t["topic"] for b in everyone.values() for t in b["topics"])
    topic = published.most_common(1)[0][0]
    by_topic = get(port, f"/top?n=50&topic={topic}").body
    assert {e["user"] for e in by_topic["users"]} == {
        u for u, b in everyone.items() if any(t["topic"] == topic for t in b["topics"])
    }
    assert ranked_like(by_topic["users"], stored, latest, model, topic)
    for bad in ("n=0", "n=abc", "n=1001", "topic=", "n=-3", "at=-1", "at=12"):
        answer = get(port, f"/top?{bad}")
        assert answer.status == 400 and answer.body["error"] == "bad_parameter", bad
    # The router's own refusals have the API's error shape too.
    missing = get(port, "/no-such-path")
    assert missing.status == 404 and missing.content_type.startswith("application/json")
    assert missing.body["error"] == "not_found"
    posted = get(port, "/top", method="POST")
    assert posted.status == 405 and posted.body["error"] == "method_not_allowed"

    # What the worker wrote to Kafka matches the schemas consumers rely on.
    check = Draft202012Validator(
        json.loads((SCHEMAS / "influence.score.changed.v1.json").read_text())
    )
    for _, value, _ in changes:
        assert value is not None and check.is_valid(orjson.loads(value))
    letters = read_topic(deployment.bootstrap, deployment.topics.dead_letter)
    check = Draft202012Validator(
        json.loads((SCHEMAS / "influence.dead_letter.v1.json").read_text())
    )
    assert len(letters) == len(BAD_MESSAGES)
    for _, value, _ in letters:
        assert value is not None and check.is_valid(orjson.loads(value))

    # `influence subscribe` prints those changes.
    subscribed = subprocess.run(
        [*SUBSCRIBE, "--from-beginning", "--json", "--limit", "5", "--user", ranked[0]],
        env=deployment.env(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    lines = [orjson.loads(line) for line in subscribed.stdout.splitlines()]
    assert lines and all(line["user"] == ranked[0] for line in lines)
    assert (
        lines
        == [orjson.loads(v) for k, v, _ in changes if k == ranked[0].encode() and v is not None][
            : len(lines)
        ]
    )

    # schemathesis: generated requests against the document, on this running worker.
    _schemathesis(port, tmp_path)


def same(answer: Any, built: Any) -> bool:
    """`answer` is `built` as JSON, floats equal to stored precision: a worker reads its
    in-memory users, the changelog holds their compactly encoded floats; a score rounded to
    two decimals may land 0.01 apart."""
    return _close(answer, orjson.loads(orjson.dumps(built)))


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and abs(a - b) <= max(0.01, 1e-5 * abs(b)) + 1e-9
    return bool(a == b)


def ranked_like(
    got: list[Any], stored: dict[str, Any], at: int, model: Model, topic: str | None = None
) -> bool:
    """`got` (a /top answer's users) is the ranking of the stored users at `at`, position by
    position to stored precision: a worker reads the users it holds, the changelog has them
    with 7-digit floats, so a score may land 0.01 apart and two nearly tied users swap."""
    users = [(u, s.state, at) for u, s in stored.items()]
    expected = rank_users(users, len(got) + 5, topic, model)
    by_user = {e.user: e.as_dict() for e in expected}
    firsts = [e["topic_score"] if topic else e["score"] for e in got]
    return (
        bool(got)
        and all(a >= b for a, b in itertools.pairwise(firsts))
        and all(e["user"] in by_user and same(e, by_user[e["user"]]) for e in got)
        and same([e["score"] for e in got], [e.score for e in expected[: len(got)]])
        and same([e["topic_score"] for e in got], [e.topic_score for e in expected[: len(got)]])
    )


def _counts(engine: Engine, user: str) -> list[int]:
    received = engine.states[user].received
    return list(received.counts) if received is not None else [0, 0, 0, 0]


def _schemathesis(port: int, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(REPO / "docs" / "openapi.yaml"),
            "--url",
            f"http://127.0.0.1:{port}",
            "--checks",
            "all",
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its example database and reports stay out of the repository
    )
    report.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    tested = re.search(r"Tested:\s+(\d+)", proc.stdout)
    assert tested is not None and int(tested.group(1)) == OPERATIONS, proc.stdout[-3000:]


def test_two_workers_route_users_and_merge_the_top(
    deploy: Any, stream: tuple[list[Event], Engine], model: Model, tmp_path: Path
) -> None:
    events, engine = stream
    deployment = deploy(4)
    first, second = deployment.start_worker(tmp_path), deployment.start_worker(tmp_path)
    time.sleep(8)  # both join the group before the stream starts
    run(deployment, events, [first, second])
    for worker in (first, second):
        wait_ready(worker)
    users = sorted(engine.states)
    for user in users:
        path = f"/users/{urllib.parse.quote(user)}"
        a, b = get(first.port, path), get(second.port, path)
        assert a.status == b.status == 200, (user, a, b)
        assert a.body == b.body, user
    assert (
        get(first.port, "/users/nobody").status == get(second.port, "/users/nobody").status == 404
    )
    # The explorer (issue 15) reads through the same forwarding: each worker shows every user.
    local_first = {e["user"] for e in get(first.port, "/top?n=1000&local=1").body["users"]}
    mine = next(u for u in users if u in local_first)
    theirs = next(u for u in users if u not in local_first and engine.states[u].received)
    for user in (mine, theirs):
        path = f"/users/{urllib.parse.quote(user)}/history"
        a, b = get(first.port, path), get(second.port, path)
        assert a.status == b.status == 200 and a.body == b.body, user
        page = get(first.port, f"/ui/users/{urllib.parse.quote(user)}")
        assert page.status == 200 and page.content_type.startswith("text/html"), page
        assert f'<h2 id="name-a" class="user-name">{user}</h2>' in page.body
    pair = get(second.port, f"/ui/compare?users={mine},{theirs}")
    assert pair.status == 200 and mine in pair.body and theirs in pair.body
    missing = get(second.port, "/ui/users/nobody")
    assert missing.status == 404 and "No such user" in missing.body
    assert get(first.port, "/ui/").status == 200
    assert get(first.port, "/ui/static/explorer.css").content_type.startswith("text/css")
    top_a, top_b = get(first.port, "/top?n=15").body, get(second.port, "/top?n=15").body
    assert top_a == top_b and top_a["complete"] is True
    local_a = get(first.port, "/top?n=1000&local=1").body["users"]
    local_b = get(second.port, "/top?n=1000&local=1").body["users"]
    assert local_a and local_b, "both workers own users"
    assert not {e["user"] for e in local_a} & {e["user"] for e in local_b}
    # One ranking at one time across both workers: the latest event time either has seen.
    latest = max(e.ts for e in events)
    assert top_a["as_of"] == latest and len(top_a["users"]) == 15
    assert ranked_like(top_a["users"], read_users(deployment), latest, model)


def test_bearer_token_guards_the_query_api_only(
    deploy: Any,
    stream: tuple[list[Event], Engine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, _ = stream
    monkeypatch.setenv("INFLUENCE_API_TOKEN", TOKEN)
    deployment = deploy(2)
    first, second = deployment.start_worker(tmp_path), deployment.start_worker(tmp_path)
    time.sleep(8)
    run(deployment, events[:500], [first, second])
    port = first.port
    for path in ("/metrics", "/livez", "/readyz"):
        assert get(port, path).status == 200, path
    user = next(e.target for e in events[:500] if e.target is not None)
    for path in (f"/users/{user}", f"/users/{user}/explain", "/top"):
        denied = get(port, path)
        assert denied.status == 401 and denied.body["error"] == "unauthorized", path
        assert get(port, path, token="wrong").status == 401
        assert get(port, path, token=TOKEN).status == 200, path
    # A request forwarded to the other worker carries the token with it.
    answers = {w.port: get(w.port, f"/users/{user}", token=TOKEN) for w in (first, second)}
    assert {a.status for a in answers.values()} == {200}
    assert len({orjson.dumps(a.body) for a in answers.values()}) == 1

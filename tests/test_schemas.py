"""The JSON Schemas in schemas/ describe what the code really reads and writes: the output of a
real `influence replay` run (score changes, snapshots, dead letters), the generator's input
events, and the query API's answers built from real engine states."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.api.replies import (
    check_token,
    error,
    explain_body,
    history_body,
    readiness,
    user_body,
)
from pipeline.api.top import TopQuery, parse_top_query, rank_users, top_body
from pipeline.driver import Driver, driver_settings
from pipeline.engine import Engine
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Model, parse_event
from scoring.events import Invalid

SCENARIOS = ("--scenario", "ring", "--scenario", "vacation")
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(name: str, documents: list[Any]) -> None:
    check = validator(name)
    assert documents, f"nothing to validate against {name}"
    for built in documents:
        document = orjson.loads(orjson.dumps(built))  # as sent: tuples become arrays
        problems = [e.message for e in check.iter_errors(document)]
        assert not problems, (name, document, problems)


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    names = sorted(p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json"))
    assert len(names) >= 9
    for name in names:
        validator(name)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """A real CLI run: generate a stream with scenarios, add bad lines, replay it."""
    tmp = tmp_path_factory.mktemp("replay")
    stream = tmp / "in.jsonl"
    cli = [sys.executable, "-m", "pipeline.cli"]
    subprocess.run(
        [*cli, "generate", "--users", "300", "--days", "20", "--out", str(stream), *SCENARIOS],
        check=True,
        capture_output=True,
        timeout=120,
    )
    good = stream.read_bytes()
    bad = [
        b"{not json",
        b'{"id":"x1","kind":"like","ts":1735689600000,"actor":"a"}',
        b'{"id":"x2","kind":"retweet","ts":1735689600000,"actor":"a"}',
        b'{"id":"x3","kind":"tweet","ts":"soon","actor":"a"}',
        b"[1, 2]",
        b'{"id":"x4","kind":"tweet","ts":1735689600000,"actor":"\xff\xfe"}',
        b'{"id":"x5","kind":"tweet","ts":1735689600000,"actor":"' + b"a" * 300 + b'"}',
    ]
    stream.write_bytes(good + b"\n".join(bad) + b"\n")
    outputs = {name: tmp / f"{name}.jsonl" for name in ("events", "snapshot", "dead")}
    outputs_args = [
        *("--events-out", str(outputs["events"])),
        *("--snapshot-out", str(outputs["snapshot"])),
        *("--dead-letter", str(outputs["dead"])),
    ]
    subprocess.run(
        [*cli, "replay", str(stream), *outputs_args],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = {name: _lines(path) for name, path in outputs.items()}
    result["input"] = _lines_of(good)
    assert len(result["dead"]) == len(bad)
    return result


def _lines(path: Path) -> list[Any]:
    return _lines_of(path.read_bytes())


def _lines_of(data: bytes) -> list[Any]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def test_score_change_events_of_a_real_replay_match_their_schema(
    replayed: dict[str, list[Any]],
) -> None:
    assert_valid("influence.score.changed.v1.json", replayed["events"])
    causes = {e["cause"] for e in replayed["events"]}
    assert {"engagement", "decay"} <= causes  # the schema's enum is exercised, not decoration
    # every event carries the optional evidence fields (issue 14), and they vary
    assert all("audience_quality" in e and "confidence" in e for e in replayed["events"])
    assert len({e["audience_quality"]["score"] for e in replayed["events"]}) > 10
    assert any(e["audience_quality"]["reasons"] for e in replayed["events"])
    assert len({e["confidence"] for e in replayed["events"]}) > 10


def test_score_change_events_of_the_worker_topology_match_their_schema(model: Model) -> None:
    """The Kafka worker's score events (pipeline.topology on the in-process driver) carry the
    same evidence fields as the replay's, from the Python core."""
    driver = Driver(model, driver_settings(2))
    driver.start("a")
    driver.assign({"a": range(2)})
    for record in generate(GeneratorConfig(users=60, days=8, seed=5, scenarios=("ring",))):
        event = parse_event(record)
        assert not isinstance(event, Invalid)
        driver.pipe_input(event)
    driver.run()
    events = [
        orjson.loads(m.value) for m in driver.read(driver.settings.topics.score_changes) if m.value
    ]
    assert_valid("influence.score.changed.v1.json", events)
    assert all("audience_quality" in e and "confidence" in e for e in events)
    assert any(e["audience_quality"]["reasons"] for e in events)


def test_snapshot_lines_match_their_schema(replayed: dict[str, list[Any]]) -> None:
    assert_valid("influence.snapshot.v1.json", replayed["snapshot"])


def test_dead_letters_match_their_schema(replayed: dict[str, list[Any]]) -> None:
    assert_valid("influence.dead_letter.v1.json", replayed["dead"])
    reasons = {d["reason"] for d in replayed["dead"]}
    assert {"bad_json", "unknown_kind", "missing_field", "wrong_type"} <= reasons


def test_generated_input_events_match_the_input_schema(replayed: dict[str, list[Any]]) -> None:
    assert_valid("influence.event.v1.json", replayed["input"])


def test_the_input_schema_and_the_parser_agree() -> None:
    """What the schema rejects, the pipeline dead-letters, and the other way round."""
    check = validator("influence.event.v1.json")
    base = {"id": "e1", "kind": "retweet", "ts": 1_700_000_000_000, "actor": "a", "target": "b"}
    cases: list[object] = [
        base,
        {**base, "kind": "tweet", "target": None},
        {k: v for k, v in base.items() if k != "target"} | {"kind": "tweet"},
        {**base, "id": 17, "actor": 42},
        {**base, "hashtags": ["#Higgs", "cern"], "ref_hashtags": [], "followers": 10},
        {**base, "followers": None, "tweet_id": None},
        {k: v for k, v in base.items() if k != "target"},
        {**base, "kind": "like"},
        {**base, "ts": "1700000000000"},
        {**base, "ts": -1},
        {**base, "ts": True},
        {**base, "ts": 1.5},
        {**base, "actor": ""},
        {**base, "actor": "x" * 257},
        {**base, "actor": ["a"]},
        {**base, "id": None},
        {**base, "hashtags": "higgs"},
        {**base, "hashtags": ["x"] * 65},
        {**base, "followers": -3},
        {**base, "followers": False},
        [base],
        "event",
    ]
    for case in cases:
        parsed = parse_event(case)
        assert check.is_valid(case) == (not isinstance(parsed, Invalid)), (case, parsed)


@pytest.fixture(scope="module")
def engine_users(model: Model) -> Iterator[tuple[Any, int]]:
    engine = Engine(model)
    for record in generate(GeneratorConfig(users=200, days=10, seed=3)):
        event = parse_event(record)
        assert not isinstance(event, Invalid)
        engine.process(event)
    assert engine.now is not None
    yield engine, engine.now


def test_api_answers_built_from_real_states_match_their_schemas(
    engine_users: tuple[Any, int], model: Model
) -> None:
    engine, now = engine_users
    users = sorted(engine.states.items())
    assert_valid("api/user.json", [user_body(u, s, now, model) for u, s in users[:50]])
    assert_valid("api/explanation.json", [explain_body(u, s, now, model) for u, s in users[:50]])
    histories = [history_body(u, s, now, model) for u, s in users]
    assert any(h["changes"] for h in histories) and any(not h["changes"] for h in histories)
    assert_valid("api/history.json", histories)
    local = [(u, s, now) for u, s in users]
    overall = rank_users(local, 20, None, model)
    topics = {t["topic"] for u, s in users for t in user_body(u, s, now, model)["topics"]}  # type: ignore[attr-defined]
    assert topics, "the generated stream publishes topics"
    topic = sorted(topics)[0]
    by_topic = rank_users(local, 5, topic, model)
    assert by_topic and all(e.topic_score is not None for e in by_topic)
    assert_valid(
        "api/top.json",
        [
            top_body(overall, TopQuery(20, None, False), model.model_version, True),
            top_body(by_topic, TopQuery(5, topic, False), model.model_version, False),
        ],
    )


def test_error_and_health_answers_match_their_schemas() -> None:
    bad = parse_top_query({"n": "zero"})
    assert not isinstance(bad, TopQuery)
    denied = check_token(None, "secret")
    assert denied is not None
    assert_valid(
        "api/error.json",
        [bad.body, denied.body, error(404, "unknown_user", "no state for user 'x'").body],
    )
    assert_valid(
        "api/health.json",
        [readiness(True).body, readiness(False).body, {"status": "ok"}],
    )


def _inline(node: Any, root: dict[str, Any]) -> Any:
    """`node` with every local `$ref` replaced by what it points to in `root`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            return _inline(target, root)
        return {
            k: _inline(v, root) for k, v in node.items() if k not in ("$defs", "$schema", "$id")
        }
    if isinstance(node, list):
        return [_inline(v, root) for v in node]
    return node


def test_the_openapi_document_is_valid_and_carries_the_api_schemas() -> None:
    import yaml
    from openapi_spec_validator import validate

    document = yaml.safe_load((SCHEMAS.parent / "docs" / "openapi.yaml").read_text())
    validate(document)
    components = document["components"]["schemas"]
    for name, component in {
        "user.json": "User",
        "explanation.json": "Explanation",
        "history.json": "History",
        "top.json": "Top",
        "error.json": "Error",
        "health.json": "Health",
    }.items():
        schema = json.loads((SCHEMAS / "api" / name).read_text())
        assert _inline(schema, schema) == _inline(components[component], document), name

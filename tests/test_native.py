"""The compiled core (native/, `scoring._native`) against the Python core (`scoring/`).

`influence replay` runs the compiled core; the Kafka workers and every rule's unit test run the
Python one. They must be the same model to the bit: identical score events (values, reasons,
order), identical states at full precision, identical snapshots and dead letters. Each test
here feeds both the same input and compares everything they give back; the property test
drives a model with tiny caps so evictions, Space-Saving, folded days and late engagements
happen within a few events.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import threading
from itertools import islice
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codec import decode_higgs_line
from pipeline.engine import Engine
from pipeline.native_engine import NativeEngine, make_engine
from pipeline.replay import replay, top_table
from pipeline.sources import decode_line, read_events
from pipeline.synthetic import GeneratorConfig, generate, write_jsonl
from scoring import Event, Model, encode_state, explain, load_model, parse_model
from scoring.model import DAY_MS, HOUR_MS

T0 = 1_735_689_600_000
MODELS = Path(__file__).resolve().parents[1] / "scoring/models"


@pytest.fixture(scope="module", params=["v1", "v2"])
def model(request: pytest.FixtureRequest) -> Model:
    """Every bundled model version: both cores must agree on each one's rules."""
    return load_model(MODELS / f"{request.param}.toml")


def assert_same_states(python: Engine, native: NativeEngine) -> None:
    """Same users, and each state equal at full precision and as stored bytes."""
    assert list(python.states) == list(native.states)
    for user, state in python.states.items():
        twin = native.states[user]
        assert twin == state, user
        assert encode_state(twin) == encode_state(state), user


def perturbed_stream(path: Path) -> None:
    """A generated stream with every scenario, plus what real input brings: redelivered and
    late events, invalid lines, tweets naming a target, follower counts, hashtags the compiled
    reader leaves to Python (non-ASCII), escaped strings, integer ids, duplicate keys, blank
    lines and CRLF line ends."""
    config = GeneratorConfig(
        users=300,
        days=32,
        seed=11,
        scenarios=("ring", "party", "vacation", "viral-retweet", "new-account"),
    )
    raw = io.BytesIO()
    write_jsonl(generate(config), raw)
    rng = random.Random(5)
    out: list[bytes] = []
    for n, line in enumerate(raw.getvalue().splitlines()):
        out.append(line)
        event = orjson.loads(line)
        roll = rng.random()
        if roll < 0.03:
            out.append(line)
        elif roll < 0.05:
            earlier = event["ts"] - rng.randint(1, 5) * DAY_MS
            out.append(orjson.dumps(dict(event, id=f"{event['id']}-late", ts=earlier)))
        elif roll < 0.055:
            out.append(b'{"kind":"retweet","id":')
        elif roll < 0.06:
            out.append(orjson.dumps(dict(event, kind="tweet", target="u0001", id=f"t{n}")))
        elif roll < 0.07:
            out.append(orjson.dumps(dict(event, followers=rng.randint(0, 10**7), id=f"f{n}")))
        elif roll < 0.075:
            out.append(orjson.dumps(dict(event, hashtags=["#Zürich", "#ZÜRICH"], id=f"h{n}")))
        elif roll < 0.08:
            out.append(line.replace(b'"actor":"', b'"actor":"\\u0075', 1))
        elif roll < 0.085:
            out.append(orjson.dumps(dict(event, id=n * 1000 + 7)))
        elif roll < 0.09:
            out.append(line[:-1] + b',"actor":"u0002"}')
        elif roll < 0.093:
            out.append(rng.choice([b"", b"  \t", b"\x0c"]))
        elif roll < 0.096:
            out[-1] += b"\r"
    path.write_bytes(b"\n".join(out) + b"\n")


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("native") / "perturbed.jsonl"
    perturbed_stream(path)
    return path


def run_replay(path: Path, model: Model, core: str) -> tuple[bytes, bytes, bytes, object]:
    events, snapshot, dead = io.BytesIO(), io.BytesIO(), io.BytesIO()
    engine, summary = replay(
        [str(path)],
        model,
        events_out=events,
        snapshot_out=snapshot,
        dead_letter_out=dead,
        show_progress=False,
        core=core,  # type: ignore[arg-type]
    )
    assert isinstance(engine, NativeEngine if core == "native" else Engine)
    return events.getvalue(), snapshot.getvalue(), dead.getvalue(), summary


def test_replays_on_both_cores_write_identical_bytes(stream: Path, model: Model) -> None:
    python = run_replay(stream, model, "python")
    native = run_replay(stream, model, "native")
    events, snapshot, dead, summary = python
    assert events.count(b"\n") > 2_000 and snapshot.count(b"\n") > 300
    assert dead.count(b"\n") > 10 and b'"cause":"decay"' in events
    assert native[0] == events
    assert native[1] == snapshot
    assert native[2] == dead
    for field in ("events", "by_kind", "users", "dead_letters", "duplicates", "score_changes"):
        assert getattr(native[3], field) == getattr(summary, field), field


def test_top_tables_match(stream: Path, model: Model) -> None:
    engines = [make_engine(model, core) for core in ("python", "native")]
    for engine in engines:
        for item in read_events(str(stream)):
            if isinstance(item, Event):
                engine.process(item)
    now = engines[0].now
    assert now is not None
    later = now + 9 * DAY_MS
    tables = [top_table(engine, at, 12) for engine in engines for at in (now, later)]
    assert tables[0] == tables[2] and tables[1] == tables[3]
    assert tables[0] != tables[1] and tables[0].count("\n") == 12


def test_states_and_explanations_match_after_each_event(stream: Path, model: Model) -> None:
    python, native = Engine(model), NativeEngine(model)
    fell_back = 0
    for number, line in enumerate(stream.read_bytes().splitlines(), 1):
        item = decode_line(line, "jsonl", number, "test")
        if not isinstance(item, Event):
            assert native.process_json(line) is None
            continue
        expected = python.process(item)
        got = native.process_json(line)
        if got is None:
            fell_back += 1
            got = native.process(item)
        assert list(got) == expected, number
    assert fell_back > 20, "the stream has lines only Python's reader takes"
    assert_same_states(python, native)
    now = python.now
    assert now is not None and now == native.now
    assert python.stats == native.stats
    for user in list(python.states)[::7]:
        assert explain(native.states[user], now, model) == explain(python.states[user], now, model)


def test_higgs_replays_on_both_cores_write_identical_bytes(
    higgs: Path, model: Model, tmp_path: Path
) -> None:
    """Higgs lines as `influence replay` reads them (gzip, batches, ids = line numbers), with
    a few broken lines among them."""
    with gzip.open(higgs, "rb") as lines:
        head = list(islice(lines, 30_000))
    head[10] = b"223789 213163 RT\n"
    head[20] = b"\n"
    head[30] = b"1 2 99x RT\n"
    head[40] = b"1 2 999999999999999 RT\n"  # year 31 million: out of range
    head[50] = b"1 2 946684799 RT\n"  # 1999: out of range
    sample = tmp_path / "higgs-head.txt.gz"
    sample.write_bytes(gzip.compress(b"".join(head)))
    python = run_replay(sample, model, "python")
    native = run_replay(sample, model, "native")
    assert python[2].count(b"\n") == 4 and python[0].count(b"\n") > 5_000
    assert native[:3] == python[:3]


def test_higgs_lines_give_identical_events_and_states(higgs: Path, model: Model) -> None:
    python, native = Engine(model), NativeEngine(model)
    changes = 0
    with gzip.open(higgs, "rb") as lines:
        for number, line in enumerate(islice(lines, 40_000), 1):
            event = decode_higgs_line(line, number)
            assert isinstance(event, Event)
            expected = python.process(event)
            got = native.process_higgs(line, number)
            assert got is not None and list(got) == expected, number
            changes += len(expected)
    assert changes > 10_000
    assert_same_states(python, native)


def tight_model(model_text: str, **extra: int) -> Model:
    """The model with caps small enough that every bound is hit within a few events."""
    caps: dict[str, int] = {
        "dedup_ids": 3,
        "max_topics": 2,
        "max_tweets_per_topic": 2,
        "max_engagers_per_topic": 2,
        "max_days_per_topic": 2,
        "min_own_tweets": 1,
        "min_days": 1,
        "min_engagers": 1,
        "open_days": 1,
        "max_in_pairs": 2,
        "max_out_pairs": 2,
        "max_action_runs": 2,
        "baseline_days": 3,
        "grace_days": 2,
        "grace_renew_days": 5,
        **extra,
    }
    for key, value in caps.items():
        model_text, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", model_text)
        assert count == 1, key
    return parse_model(model_text)


USERS = st.sampled_from(["a", "b", "c", "d", "e", "ü"])
KINDS = st.sampled_from(["tweet", "retweet", "quote", "reply", "mention"])
TAGS = st.lists(st.sampled_from(["x", "Y", "#z", "w", "#"]), max_size=3)


def clean_tags(tags: list[str]) -> tuple[str, ...]:
    """As `parse_event` leaves hashtags: lower case, no leading #, no empty or repeated tag."""
    return tuple(dict.fromkeys(t.lower().lstrip("#") for t in tags if t.strip("#")))


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    out = []
    ts = T0
    for n in range(draw(st.integers(1, 60))):
        ts += draw(st.integers(-3 * DAY_MS, 2 * DAY_MS)) if draw(st.booleans()) else HOUR_MS
        kind = draw(KINDS)
        out.append(
            Event(
                id=draw(st.sampled_from([f"e{n}", "dup"])),
                kind=kind,
                ts=max(ts, 0),
                actor=draw(USERS),
                target=None if kind == "tweet" else draw(USERS),
                ref_tweet_id=draw(st.sampled_from([None, "t1", "t2", "t3"])),
                hashtags=clean_tags(draw(TAGS)),
                ref_hashtags=clean_tags(draw(TAGS)),
                followers=draw(st.one_of(st.none(), st.integers(0, 10**8))),
            )
        )
    return out


TIGHT = {
    "v1": tight_model((MODELS / "v1.toml").read_text("utf-8")),
    # model 2's hold may not outlast the open days; 0 or 1 both fold engagers early
    "v2": tight_model((MODELS / "v2.toml").read_text("utf-8"), hold_days=1, reciprocal_free=1),
}


EXAMPLES = int(os.environ.get("NATIVE_EXAMPLES", "300"))
"""Streams the property test tries (4,000 passed once; CI runs 300)."""


@pytest.mark.parametrize("version", sorted(TIGHT))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=events(), end=st.integers(0, 10 * DAY_MS))
def test_any_stream_gives_identical_results_under_tight_caps(
    version: str, stream: list[Event], end: int
) -> None:
    tight = TIGHT[version]
    python, native = Engine(tight), NativeEngine(tight)
    for event in stream:
        assert native.process(event) == python.process(event)
    horizon = max(e.ts for e in stream) + end
    assert native.advance_to(horizon) == python.advance_to(horizon)
    assert python.stats == native.stats
    assert_same_states(python, native)


BASE = '{"id":"1","kind":"tweet","ts":1735689601000,"actor":"a"'
REJECTED = [
    '["1","retweet",1735689601000,"c","b"]',  # an array is not an object
    BASE + ',"x":"\\ud800"}',  # a lone surrogate
    BASE + ',"x":1e400}',  # beyond a double
    BASE + ',"x":' + "[" * 1100 + "]" * 1100 + "}",  # nested deeper than orjson reads
    BASE.replace("1735689601000", "01735689601000") + "}",  # not JSON
    BASE + ",}",
    BASE + "} x",
    BASE.replace("1735689601000", "1735689601000.0") + "}",
    BASE.replace('"a"', '""') + "}",
    BASE + ',"followers":-1}',
    BASE + ',"followers":true}',
    BASE + ',"hashtags":"x"}',
    BASE.replace('"tweet"', '"like"') + "}",
    BASE.replace("1735689601000", "-5") + "}",
    BASE.replace("1735689601000", "946684799999") + "}",  # 1999
    BASE + ',"hashtags":["' + "x" * 300 + '"]}',
    BASE.replace("1735689601000", "3471292800000") + "}",  # 2080
    BASE + ',"followers":9223372036854775808}',  # beyond a 64-bit integer
    BASE.replace("1735689601000", "99999999999999999999") + "}",
]
ACCEPTED = [
    BASE + "}",
    BASE + ',"ts":1735689602000}',  # duplicate key: orjson keeps the last one
    BASE + ',"extra":{"nested":[1,2.5,null]}}',
    BASE.replace("1735689601000", "3471292799999") + "}",
    BASE.replace("1735689601000", "946684800000") + "}",
    BASE.replace('"a"', '"\\u00e4"') + "}",
    BASE + ',"hashtags":["\u00c4rger","#A","a","##"],"followers":7}',
    BASE.replace('"1"', "17") + "}",
    " " + BASE + ' , "target" : "b" }\n',
    BASE + ',"followers":9223372036854775807}',
]


@pytest.mark.parametrize("line", [*REJECTED, BASE + ',"x":"\xff"}'])
def test_the_compiled_reader_never_takes_a_line_python_rejects(line: str, model: Model) -> None:
    raw = line.encode("utf-8", "surrogateescape") if "\xff" not in line else line.encode("latin-1")
    assert not isinstance(decode_line(raw, "jsonl", 1, "test"), Event)
    assert NativeEngine(model).process_json(raw) is None


def test_record_classes_must_be_tuples(model: Model) -> None:
    from scoring import _native

    class Plain:
        pass

    with pytest.raises(TypeError, match="not a tuple type"):
        _native.NativeEngine(model, Plain, Plain, Plain, Plain, Plain, Plain)


@pytest.mark.parametrize("line", ACCEPTED)
def test_a_line_python_accepts_scores_the_same_either_way(line: str, model: Model) -> None:
    event = decode_line(line.encode(), "jsonl", 1, "test")
    assert isinstance(event, Event)
    python, native = Engine(model), NativeEngine(model)
    expected = python.process(event)
    got = native.process_json(line.encode())
    if got is None:
        got = native.process(event)
    assert list(got) == expected
    assert_same_states(python, native)


def test_the_usual_lines_are_read_without_python(model: Model) -> None:
    engine = NativeEngine(model)
    for line in (BASE + "}", BASE + ', "hashtags": ["#A", "a", "##"], "target": null }\n'):
        assert engine.process_json(line.encode()) == ()
    assert engine.stats.events["tweet"] == 1 and engine.stats.duplicates == 1


def test_counts_can_be_read_from_another_thread(model: Model) -> None:
    """/metrics is served from its own thread while the replay runs."""
    engine = NativeEngine(model)
    engine.process_json((BASE + "}").encode())
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(engine.stats.events["tweet"]))
    reader.start()
    reader.join()
    assert seen == [1]


def test_make_engine_picks_the_core(model: Model) -> None:
    assert isinstance(make_engine(model, "native"), NativeEngine)
    assert isinstance(make_engine(model, "python"), Engine)
    assert isinstance(make_engine(model, "auto"), NativeEngine)
    with pytest.raises(ValueError, match="INFLUENCE_CORE"):
        make_engine(model, "fast")  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(
    x=st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e16, 1e15, 9.999999999999998e15, 1e-5, 9.99e-6, 1e-6, -0.0, 5e-324])
    | st.floats(0, 101).map(lambda v: round(v, 2)),
    text=st.text(),
)
def test_compiled_writers_write_what_orjson_writes(x: float, text: str) -> None:
    """The compiled core writes --events-out and --snapshot-out itself (native/src/json_out.rs):
    its floats and strings must be the installed orjson's, byte for byte."""
    from scoring import _native

    assert _native.dumps_float(x) == orjson.dumps(x)
    try:
        expected = orjson.dumps(text)
    except TypeError:  # lone surrogates: not UTF-8, and the core never holds one
        return
    assert _native.dumps_str(text) == expected


def test_awkward_user_ids_are_written_identically(model: Model, tmp_path: Path) -> None:
    """Ids that need escaping, or are not ASCII, in both cores' score events and snapshots."""
    awkward = ['a"b', "back\\slash", "tab\tnew\nline", "\x01\x1f\x7f", "Zürich", "😀", "/", "x"]
    lines = []
    for n, (actor, target) in enumerate(zip(awkward, awkward[1:] + awkward[:1], strict=True)):
        for kind in ("retweet", "mention", "reply"):
            event = {"id": f"{n}{kind}", "kind": kind, "ts": T0 + n * 60_000, "actor": actor}
            lines.append(orjson.dumps(dict(event, target=target)))
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    python, native = run_replay(path, model, "python"), run_replay(path, model, "native")
    # every id is in a score event (model 2 emits one per user here: one engager each)
    assert python[0].count(b"\n") >= len(awkward) and python[1].count(b"\n") == len(awkward)
    assert native[:3] == python[:3]

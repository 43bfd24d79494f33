"""`influence produce` without a broker: routing, keys, timestamps, ranges, resuming, pacing."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.cli import main
from pipeline.produce.loop import (
    LINE_HEADER,
    SOURCE_HEADER,
    Pacer,
    ProduceStats,
    Record,
    RetentionError,
    Source,
    TimeRange,
    fingerprint,
    produce,
)
from pipeline.settings import Topics
from scoring.events import EVENT_KINDS, SOURCES
from scoring.model import DAY_MS
from tests.conftest import T0

TOPICS = Topics(tweets="t-in", retweets="r-in", mentions="m-in")
LINES = [
    b'{"id":"1","kind":"tweet","ts":%d,"actor":"ann","hashtags":["x"]}' % T0,
    b'{"id":"2","kind":"retweet","ts":%d,"actor":"bob","target":"ann"}' % (T0 + 1000),
    b"{broken",
    b'{"id":"3","kind":"quote","ts":%d,"actor":"cid","target":"ann"}' % (T0 + 2000),
    b"",
    b'{"id":"4","kind":"reply","ts":%d,"actor":"bob","target":"cid"}' % (T0 + 3000),
    b'{"id":"5","kind":"mention","ts":%d,"actor":"ann","target":"bob"}' % (T0 + 4000),
]


class ListSink:
    """Records in send order; two partitions per topic by a stable hash of the key."""

    def __init__(self, kept_from: dict[str, int] | None = None) -> None:
        self.sent: list[tuple[Record, int, dict[str, bytes]]] = []
        self.flushed = False
        self.kept_from = kept_from or {}

    def partition_for(self, topic: str, key: bytes) -> int:
        return zlib.crc32(key) % 2

    def oldest_kept_ms(self, topic: str) -> int | None:
        return self.kept_from.get(topic)

    async def send(self, record: Record, partition: int, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((record, partition, dict(headers)))

    async def flush(self) -> None:
        self.flushed = True


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


def run(path: Path, **options: Any) -> tuple[ListSink, ProduceStats]:
    sink = ListSink()
    stats = asyncio.run(produce([Source(str(path), "src")], sink, TOPICS, **options))
    return sink, stats


def test_each_kind_goes_to_its_topic_keyed_by_actor_at_event_time(stream: Path) -> None:
    sink, stats = run(stream)
    routed = [
        (r.topic, r.key, r.timestamp_ms, orjson.loads(r.value)["id"]) for r, _, _ in sink.sent
    ]
    assert routed == [
        ("t-in", b"ann", T0, "1"),
        ("r-in", b"bob", T0 + 1000, "2"),
        ("t-in", b"cid", T0 + 2000, "3"),
        ("t-in", b"bob", T0 + 3000, "4"),
        ("m-in", b"ann", T0 + 4000, "5"),
    ]
    first = orjson.loads(sink.sent[0][0].value)
    assert first == {"id": "1", "kind": "tweet", "ts": T0, "actor": "ann", "hashtags": ["x"]}
    assert [h[LINE_HEADER] for _, _, h in sink.sent] == [b"1", b"2", b"4", b"6", b"7"]
    assert {h[SOURCE_HEADER] for _, _, h in sink.sent} == {b"src"}
    assert [p for _, p, _ in sink.sent] == [zlib.crc32(r.key) % 2 for r, _, _ in sink.sent]
    assert sink.flushed
    assert stats.invalid == 1 and stats.outside_range == 0
    assert dict(stats.produced) == {"t-in": 3, "r-in": 1, "m-in": 1}


def test_the_default_input_topics_are_named_and_ordered_as_scorings_sources() -> None:
    """A topic's index in `Topics.inputs` is the source its actions are counted in (§12)."""
    assert Topics().inputs == SOURCES
    assert {kind: Topics().for_kind(kind) for kind in EVENT_KINDS} == {
        "tweet": "tweets",
        "quote": "tweets",
        "reply": "tweets",
        "retweet": "retweets",
        "mention": "mentions",
    }


def test_from_is_inclusive_and_to_exclusive(stream: Path) -> None:
    sink, stats = run(stream, window=TimeRange(T0 + 1000, T0 + 4000))
    assert [orjson.loads(r.value)["id"] for r, _, _ in sink.sent] == ["2", "3", "4"]
    assert stats.outside_range == 2


def test_lines_at_or_below_a_partitions_watermark_are_skipped(stream: Path) -> None:
    everything, _ = run(stream)
    by_line = {int(h[LINE_HEADER]): (r.topic, p) for r, p, h in everything.sent}
    # A first run that stopped after line 4 in every partition it had reached.
    marks = {("src", topic, p): 4 for line, (topic, p) in by_line.items() if line <= 4}
    sink, stats = run(stream, watermarks=marks)
    again = [int(h[LINE_HEADER]) for _, _, h in sink.sent]
    expected = [n for n, (topic, p) in by_line.items() if marks.get(("src", topic, p), 0) < n]
    assert again == expected and 6 in again and 7 in again
    assert stats.already_produced == len(by_line) - len(expected)
    # Another source's watermark does not hide this one's lines.
    other, _ = run(stream, watermarks={("other", t, p): 99 for t, p in by_line.values()})
    assert len(other.sent) == len(everything.sent)


def test_invalid_lines_are_counted_and_dead_lettered_not_produced(
    stream: Path, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    with dead.open("wb") as out:
        sink, stats = run(stream, dead_letter_out=out)
    assert stats.invalid == 1
    letters = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert [(d["position"], d["reason"]) for d in letters] == [(3, "bad_json")]
    assert all(b"broken" not in r.value for r, _, _ in sink.sent)


def test_higgs_gzip_input_maps_kinds_and_seconds(tmp_path: Path) -> None:
    path = tmp_path / "h.txt.gz"
    path.write_bytes(gzip.compress(b"1 2 1341100972 RT\n3 1 1341100973 MT\n4 2 1341100974 RE\n"))
    sink, _ = run(path)
    assert [(r.topic, r.key, r.timestamp_ms) for r, _, _ in sink.sent] == [
        ("r-in", b"1", 1341100972000),
        ("m-in", b"3", 1341100973000),
        ("t-in", b"4", 1341100974000),
    ]


def test_an_event_the_topic_would_delete_at_once_stops_the_run(stream: Path) -> None:
    # The tweets topic keeps records from T0 + 2.5 s on; retweets and mentions keep all.
    sink = ListSink(kept_from={"t-in": T0 + 2500})
    with pytest.raises(RetentionError, match=r"retention\.ms"):
        asyncio.run(produce([Source(str(stream), "src")], sink, TOPICS))
    assert sink.sent == []  # line 1, a tweet at T0, is refused before anything is sent
    kept = ListSink(kept_from={"r-in": T0 + 1000, "m-in": T0})
    asyncio.run(produce([Source(str(stream), "src")], kept, TOPICS))
    assert len(kept.sent) == 5  # at or after the floor: kept


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_speed_n_paces_sends_by_event_time() -> None:
    fake = FakeTime()
    pacer = Pacer(60.0, clock=fake.clock, sleep=fake.sleep)

    async def send_at(ts: int, work: float = 0.0) -> None:
        await pacer.wait(ts)
        fake.now += work  # time spent sending

    async def scenario() -> None:
        await send_at(T0)
        await send_at(T0 + 60_000)  # a minute of event time = 1 s at 60x
        await send_at(T0 + 30_000)  # out of order: already due, sent at once
        await send_at(T0 + 240_000, work=0.5)  # 4 s after the origin
        await send_at(T0 + 270_000)  # due at 4.5 s; the send above took 0.5 s already

    asyncio.run(scenario())
    assert fake.sleeps == pytest.approx([1.0, 3.0])
    assert fake.now == pytest.approx(104.5)


def test_speed_zero_never_waits_and_negative_is_refused() -> None:
    fake = FakeTime()
    pacer = Pacer(0, clock=fake.clock, sleep=fake.sleep)
    for ts in (T0, T0 + DAY_MS, T0 + 10 * DAY_MS):
        assert pacer.delay(ts) == 0.0
    with pytest.raises(ValueError):
        Pacer(-1)


def test_fingerprint_follows_the_bytes(stream: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(stream.read_bytes())
    assert fingerprint(str(copy)) == fingerprint(str(stream))
    copy.write_bytes(stream.read_bytes() + b"\n")
    assert fingerprint(str(copy)) != fingerprint(str(stream))


def test_cli_reports_a_missing_input_and_stdin_without_a_source_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["produce", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["produce", "-"]) == 2
    assert "--source-id" in capsys.readouterr().err

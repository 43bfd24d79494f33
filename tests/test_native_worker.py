"""The worker on the compiled core (`pipeline.native_steps`) against the worker on the Python
core, on the in-process driver: every record on every topic (score changes, engagement
bundles, forwarded inputs, dead letters, tombstones), every changelog record in the order
sent and the stored rows must be the same bytes, through redeliveries, a crash and restart
from stored state, a failover between cores, forget, damaged and older-layout rows, and decoded
users dropped and read back from their (shortened) rows between batches."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pipeline.codec import decode_higgs_line, key_partition
from pipeline.driver import Driver, driver_settings
from pipeline.metrics import PipelineMetrics
from pipeline.native_engine import NativeUnavailable
from pipeline.native_steps import NativeUserCache
from pipeline.settings import Settings, core_from_env
from pipeline.steps import UserCache
from pipeline.topology import Topology
from scoring import Event, Model, load_model
from tests.conftest import HIGGS, Events
from tests.test_metrics import samples
from tests.test_topology import is_decay, stream

PARTITIONS = 4
ALL = range(PARTITIONS)
Outputs = tuple[dict[str, list[Any]], list[Any], dict[int, dict[bytes, bytes]]]
Script = Callable[[Driver, Callable[[str], str]], None]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def outputs(driver: Driver) -> Outputs:
    topics = {
        topic: [(m.partition, m.offset, m.key, m.value) for m in driver.read(topic)]
        for topic in sorted(driver.topics)
    }
    return topics, driver.changelog, driver.store


def run(model: Model, script: Script, cores: tuple[str, str], **settings: Any) -> Outputs:
    """`script` on a driver whose workers run `cores[0]`, and `cores[1]` for any started
    after a crash (`restart(name)` starts one)."""
    driver = Driver(model, driver_settings(PARTITIONS, core=cores[0], **settings))
    driver.start("a")
    driver.assign({"a": ALL})

    def restart(name: str) -> str:
        driver.settings = driver_settings(PARTITIONS, core=cores[1], **settings)
        driver.start(name)
        return name

    script(driver, restart)
    return outputs(driver)


def assert_same(a: Outputs, b: Outputs) -> None:
    topics_a, changelog_a, store_a = a
    topics_b, changelog_b, store_b = b
    assert topics_a.keys() == topics_b.keys()
    for topic in topics_a:
        assert len(topics_a[topic]) == len(topics_b[topic]), topic
        for x, y in zip(topics_a[topic], topics_b[topic], strict=True):
            assert x == y, topic
    assert len(changelog_a) == len(changelog_b)
    for x, y in zip(changelog_a, changelog_b, strict=True):
        assert x == y
    assert {p: list(rows.items()) for p, rows in store_a.items()} == {
        p: list(rows.items()) for p, rows in store_b.items()
    }


def scenarios(driver: Driver, restart: Callable[[str], str]) -> None:
    """Party, vacation and a retweet ring over sixteen days; a redelivery, a crash and a
    restart from stored state, a damaged row and a layout-3 row, a forget."""
    events = stream()
    first, second = len(events) // 3, len(events) * 2 // 3
    broken = b"broken-user"
    driver.store.setdefault(key_partition(broken, PARTITIONS), {})[broken] = b'[1, {}, [4, "x"]]'
    for event in events[:first]:
        driver.pipe_input(event)
    driver.pipe_raw(driver.settings.topics.retweets, b"not-json", b"{nope", 1)
    driver.run()
    worker = driver.workers["a"]
    for event in events[first:second]:
        driver.pipe_input(event)
    worker.step(limit=40, commit=False)
    worker.rewind()  # redelivered from the committed offsets
    driver.run()
    # a stored row of the older layout (3: no history, no engager sums) reads on both cores
    some = next(iter(driver.store[0]))
    layout, positions, row = orjson.loads(driver.store[0][some])
    driver.store[0][some] = orjson.dumps([layout, positions, [3, *row[1:10]]])
    driver.crash("a")
    name = restart("b")
    driver.assign({name: ALL})
    for event in events[second:]:
        driver.pipe_input(event)
    driver.pipe_input(Event("to-broken", "retweet", events[-1].ts, "fan", "broken-user"))
    driver.run()
    driver.forget(events[0].actor)
    driver.run()


@pytest.mark.parametrize("cache_max_users", [100_000, 5])
def test_the_scenarios_give_the_same_bytes_on_both_cores(
    model: Model, cache_max_users: int
) -> None:
    python = run(model, scenarios, ("python", "python"), cache_max_users=cache_max_users)
    native = run(model, scenarios, ("native", "native"), cache_max_users=cache_max_users)
    assert_same(python, native)
    topics, changelog, _ = native
    reasons = [orjson.loads(v)["reason"] for *_, v in topics["influence-dead-letter"]]
    assert reasons.count("bad_state") == 1 and "bad_json" in reasons
    assert any(v is None for *_, v in topics["score-changes"])  # the forget's tombstone
    assert changelog


def decay_after_a_restart(driver: Driver, restart: Callable[[str], str]) -> None:
    """tests/test_topology.py's decay case: 30 users engaged for 20 days, a restart (the watch
    resumed from stored rows), a follower jump, then event time 60 days on."""
    ev = Events()
    engaged = [f"star{n}" for n in range(30)]
    for day in range(20):
        for n, star in enumerate(engaged):
            driver.pipe_input(
                ev("retweet", f"fan{(n * 7 + day) % 40}", star, day=day, hour=n % 20, followers=300)
            )
    driver.run()
    driver.crash("a")
    name = restart("b")
    driver.assign({name: ALL})
    driver.pipe_input(ev("tweet", engaged[0], day=21, followers=90_000))
    driver.pipe_input(ev("retweet", "fan0", "newcomer", day=80, followers=300))
    driver.run()


def test_decay_changes_after_a_restart_give_the_same_bytes_on_both_cores(model: Model) -> None:
    python = run(model, decay_after_a_restart, ("python", "python"), cache_max_users=7)
    native = run(model, decay_after_a_restart, ("native", "native"), cache_max_users=7)
    assert_same(python, native)
    values = [v for *_, v in native[0]["score-changes"] if v is not None]
    assert sum(is_decay(v) for v in values) > 10  # the decay watch's checks ran in Rust


def test_a_failover_between_cores_reads_the_other_cores_rows(model: Model) -> None:
    """Rows written by one core are read by the other, both ways, and the outputs are those
    of a run on one core: a rolling upgrade or a rollback changes nothing downstream."""
    python = run(model, scenarios, ("python", "python"))
    assert_same(python, run(model, scenarios, ("python", "native")))
    assert_same(python, run(model, scenarios, ("native", "python")))


def higgs(count: int) -> list[Event]:
    with gzip.open(HIGGS, "rb") as lines:
        events = [
            decode_higgs_line(line, n) for n, line in enumerate(itertools.islice(lines, count), 1)
        ]
    return [e for e in events if isinstance(e, Event)]


def test_higgs_through_two_workers_with_a_failover(model: Model) -> None:
    events = higgs(12_000)

    def script(driver: Driver, restart: Callable[[str], str]) -> None:
        driver.start("b")
        driver.assign({"a": [0, 1], "b": [2, 3]})
        for event in events[:7_000]:
            driver.pipe_input(event)
        driver.run(limit=500)
        driver.crash("b")
        driver.assign({"a": ALL})
        for event in events[7_000:]:
            driver.pipe_input(event)
        driver.run(limit=500)

    assert_same(run(model, script, ("python",) * 2), run(model, script, ("native",) * 2))


def test_the_core_comes_from_the_settings_and_shows_in_metrics(model: Model) -> None:
    for core, cache in (("python", UserCache), ("native", NativeUserCache)):
        metrics = PipelineMetrics(model.model_version)
        topology = Topology(driver_settings(PARTITIONS, core=core), model, {}, "changelog", metrics)
        assert topology.core == core and isinstance(topology.cache(0), cache)
        values = samples(metrics.render().decode())
        info = ("influence_model_info", (("core", core), ("version", model.model_version)))
        assert values[info] == 1
    assert Topology(driver_settings(1), model, {}, "changelog").core == "native"  # auto
    assert Settings.from_env({"INFLUENCE_CORE": "python"}).core == "python"
    assert core_from_env({"INFLUENCE_CORE": "native"}) == "native"
    with pytest.raises(ValueError, match="INFLUENCE_CORE"):
        Settings.from_env({"INFLUENCE_CORE": "rust"})


def test_an_extension_without_the_worker_class_counts_as_not_built(
    model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension built from an older checkout (no `NativeUsers`): `auto` runs the Python
    core, `native` refuses with a message that says what to do."""
    from scoring import _native

    monkeypatch.delattr(_native, "NativeUsers")
    assert Topology(driver_settings(1, core="auto"), model, {}, "changelog").core == "python"
    with pytest.raises(NativeUnavailable, match="rebuild"):
        Topology(driver_settings(1, core="native"), model, {}, "changelog")


def test_the_query_api_reads_the_same_cached_users_on_both_cores(model: Model) -> None:
    """`cached` (what `pipeline.api.read_model` reads before the table): the compiled core's
    copy of a decoded user equals the Python core's, at full precision."""
    events = stream()
    caches = []
    for core in ("python", "native"):
        driver = Driver(model, driver_settings(PARTITIONS, core=core))
        driver.start("a")
        driver.assign({"a": ALL})
        for event in events:
            driver.pipe_input(event)
        driver.run()
        caches.append(driver.workers["a"].topology.caches)
    python, native = caches
    users = {e.actor for e in events} | {e.target for e in events if e.target}
    checked = 0
    for user in users:
        partition = key_partition(user.encode(), PARTITIONS)
        expected = python[partition].cached(user)
        assert native[partition].cached(user) == expected, user
        assert native[partition].is_dirty(user) == python[partition].is_dirty(user)
        checked += expected is not None
    assert checked > 40

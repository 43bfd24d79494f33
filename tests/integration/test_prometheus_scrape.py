"""A real scrape (issue 4, item 6): Debian's Prometheus server on 127.0.0.1 scrapes a running
worker (and the embedded engine), and its HTTP API shows the pipeline's metrics with the values
that were produced, the project's alert rules evaluating without error, and alerts firing.

The project's own rules (deploy/prometheus/alerts.yml) are loaded unchanged except for their
`for:` durations, shortened so that a test can see them fire; the scrape job keeps the name the
rules and the dashboard select on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import yaml

from pipeline.native_engine import resolve_core
from pipeline.settings import core_from_env
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Model
from tests.integration.pipeline_kit import (
    Deployment,
    WorkerProcess,
    new_deployment,
    produce_raw,
    wait_until_processed,
)
from tests.tools import PrometheusTools, ensure_prometheus

REPO = Path(__file__).resolve().parents[2]
DEPLOY_PROMETHEUS = REPO / "deploy" / "prometheus"
SCRAPE_INTERVAL = "1s"
SHORT_FOR = "1s"
"""Every alert's `for:` in the test: long enough to go through pending, short enough to wait."""
PARTITIONS = 2
BATCHES = 6
"""Input is produced in batches a scrape or two apart (232 valid events, 48 bad messages)."""
BAD_PER_BATCH = 8
PAUSE_BETWEEN_BATCHES_S = 2.0
WAIT_S = 90.0

T = TypeVar("T")


@pytest.fixture(scope="session")
def prometheus_tools() -> PrometheusTools:
    return ensure_prometheus()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait(probe: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    """Polls ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, ValueError) as exc:  # not up yet, or a half-written answer
            last_error = exc
            value = None
        if value is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error {last_error})")


@dataclass
class Prometheus:
    """A Prometheus server process and its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = _get_json(url)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        """The value of a one-series query, or None while it has no series."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def wait_value(self, promql: str, expected: float) -> None:
        _wait(
            lambda: True if self.scalar(promql) == expected else None,
            f"{promql} == {expected} (last {self.scalar(promql)})",
        )

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        alerts = _get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return [
            a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def wait_firing(self, alertname: str) -> list[dict[str, Any]]:
        return _wait(lambda: self.firing(alertname) or None, f"alert {alertname} firing")

    def rules(self) -> list[dict[str, Any]]:
        groups = _get_json(f"{self.url}/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _project_rules_with_short_for(tmp: Path) -> Path:
    """alerts.yml as shipped, with every `for:` shortened."""
    rules = yaml.safe_load((DEPLOY_PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = SHORT_FOR
    path = tmp / "alerts.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def _job_name() -> str:
    config = yaml.safe_load((DEPLOY_PROMETHEUS / "prometheus.yml").read_text())
    name: str = config["scrape_configs"][0]["job_name"]
    return name


@pytest.fixture
def start_prometheus(
    prometheus_tools: PrometheusTools, tmp_path: Path
) -> Iterator[Callable[[list[str]], Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: list[str]) -> Prometheus:
        rules = _project_rules_with_short_for(tmp_path)
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": _job_name(),
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = _free_port()
        log = tmp_path / "prometheus.log"
        process = subprocess.Popen(
            [
                prometheus_tools.prometheus,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = Prometheus(f"http://127.0.0.1:{port}", process, log)
        started.append(server)

        def ready() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{server.tail()}")
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                return True if response.status == 200 else None

        _wait(ready, "prometheus to be ready", timeout=60)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=30)


def _events(seed: int) -> list[dict[str, Any]]:
    return list(generate(GeneratorConfig(users=60, days=2, seed=seed)))


def _assert_rules_evaluate(prometheus: Prometheus) -> None:
    """Every project rule has been evaluated on the scraped data, without an error."""
    groups = yaml.safe_load((DEPLOY_PROMETHEUS / "alerts.yml").read_text())["groups"]
    count = sum(len(group["rules"]) for group in groups)

    def evaluated() -> list[dict[str, Any]] | None:
        rules = prometheus.rules()
        done = [r for r in rules if not r["lastEvaluation"].startswith("0001-")]
        return rules if len(done) == count else None

    rules = _wait(evaluated, "every rule to be evaluated")
    assert len(rules) == count
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


async def _produce_batch(
    bootstrap: str, deployment: Deployment, events: list[dict[str, Any]], batch: int
) -> None:
    """Batch number `batch` of the valid events, then BAD_PER_BATCH messages that are not JSON."""
    topics = deployment.topics
    size = -(-len(events) // BATCHES)
    chunk = events[batch * size : (batch + 1) * size]
    for topic in sorted({topics.for_kind(str(e["kind"])) for e in chunk}):
        await produce_raw(
            bootstrap,
            topic,
            [
                (str(e["actor"]).encode(), orjson.dumps(e))
                for e in chunk
                if topics.for_kind(str(e["kind"])) == topic
            ],
        )
    await produce_raw(
        bootstrap,
        topics.tweets,
        [(f"u{i}".encode(), b'{"not json') for i in range(BAD_PER_BATCH)],
    )


def _wait_serving(worker: WorkerProcess) -> None:
    def serving() -> bool | None:
        if not worker.alive():
            raise AssertionError(f"worker died:\n{worker.tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=2) as r:
            return True if r.status == 200 else None

    _wait(serving, "the worker to be ready", timeout=120)


def test_prometheus_scrapes_a_worker_and_evaluates_the_alert_rules(
    kafka_bootstrap: str,
    tmp_path: Path,
    model: Model,
    start_prometheus: Callable[[list[str]], Prometheus],
) -> None:
    deployment = new_deployment(kafka_bootstrap, "ps", PARTITIONS)
    try:
        worker = deployment.start_worker(tmp_path)
        _wait_serving(worker)
        target = f"127.0.0.1:{worker.port}"
        prometheus = start_prometheus([target])
        job = _job_name()
        prometheus.wait_value(f'up{{job="{job}"}}', 1.0)

        # The first batch creates the counters' series; the later ones make them rise between
        # scrapes, which is what rate() (and so the dead-letter alert) needs to see.
        events = _events(seed=11)
        asyncio.run(_produce_batch(kafka_bootstrap, deployment, events, 0))
        _wait(
            lambda: prometheus.scalar("sum(influence_dead_letters_total)"),
            "the first dead letters to be scraped",
        )
        for batch in range(1, BATCHES):
            asyncio.run(_produce_batch(kafka_bootstrap, deployment, events, batch))
            time.sleep(PAUSE_BETWEEN_BATCHES_S)
        wait_until_processed(deployment)

        # The values that arrive are the ones produced, exactly.
        by_kind: dict[str, int] = {}
        for event in events:
            by_kind[str(event["kind"])] = by_kind.get(str(event["kind"]), 0) + 1
        prometheus.wait_value(
            f'sum(influence_events_consumed_total{{job="{job}"}})', float(len(events))
        )
        arrived = {
            r["metric"]["kind"]: float(r["value"][1])
            for r in prometheus.query("sum by (kind) (influence_events_consumed_total)")
        }
        assert arrived == {kind: float(n) for kind, n in by_kind.items()}
        bad = float(BATCHES * BAD_PER_BATCH)
        prometheus.wait_value('sum(influence_dead_letters_total{reason="bad_json"})', bad)
        assert prometheus.scalar('sum(influence_events_invalid_total{reason="bad_json"})') == bad
        last_ts = max(int(str(e["ts"])) for e in events) / 1000
        assert prometheus.scalar("influence_last_event_time_seconds") == last_ts
        assert (prometheus.scalar("sum(influence_score_changes_total)") or 0) > 0
        assert (prometheus.scalar("influence_processing_latency_seconds_count") or 0) > 0
        assert (prometheus.scalar("influence_users_tracked") or 0) > 0
        assert prometheus.scalar("influence_recovery_in_progress") == 0
        assert prometheus.scalar("influence_up") == 1
        info = prometheus.query("influence_model_info")
        assert [r["metric"]["version"] for r in info] == [model.model_version]
        worker_core = resolve_core(core_from_env(), needs="NativeUsers")  # from the same env
        assert [r["metric"]["core"] for r in info] == [worker_core]
        lag = prometheus.query("influence_consumer_lag_messages")
        assigned = {(r["metric"]["topic"], r["metric"]["partition"]) for r in lag}
        for topic in deployment.topics.inputs:  # one worker owns every partition
            assert {(topic, str(p)) for p in range(PARTITIONS)} <= assigned

        # The project's rules evaluate on this data, and the dead-letter alert fires.
        _assert_rules_evaluate(prometheus)
        dead_letters = prometheus.wait_firing("InfluenceDeadLetterRate")
        assert [a["labels"]["reason"] for a in dead_letters] == ["bad_json"]
        assert dead_letters[0]["annotations"]["runbook_url"].startswith("docs/operations.md#")
        assert prometheus.firing("InfluenceWorkerDown") == []

        # A stopped worker is noticed.
        worker.stop()
        down = prometheus.wait_firing("InfluenceWorkerDown")
        assert [a["labels"]["instance"] for a in down] == [target]
        prometheus.wait_firing("InfluenceNoWorkerUp")
    finally:
        deployment.stop_all()


def _native_built() -> bool:
    return importlib.util.find_spec("scoring._native") is not None


def _assert_model_info(prometheus: Prometheus, core: str) -> None:
    """`influence_model_info{version, core} 1`, ingested as an info metric (OpenMetrics)."""
    info = prometheus.query("influence_model_info")
    assert [(r["metric"]["core"], r["value"][1]) for r in info] == [(core, "1")]
    metadata = _get_json(f"{prometheus.url}/api/v1/metadata?metric=influence_model")["data"]
    assert [m["type"] for m in metadata["influence_model"]] == ["info"], metadata


def test_prometheus_scrapes_the_embedded_engine(
    tmp_path: Path, start_prometheus: Callable[[list[str]], Prometheus]
) -> None:
    """`influence replay - --metrics-port N` reading a stream from stdin, scraped while it runs."""
    port = _free_port()
    log = tmp_path / "replay.log"
    replay = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "replay", "-", "--metrics-port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    assert replay.stdin is not None
    try:
        prometheus = start_prometheus([f"127.0.0.1:{port}"])
        prometheus.wait_value(f'up{{job="{_job_name()}"}}', 1.0)
        events = _events(seed=12)
        lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
        replay.stdin.write(lines + b"not json\n")
        replay.stdin.flush()
        prometheus.wait_value("sum(influence_events_consumed_total)", float(len(events)))
        prometheus.wait_value("sum(influence_dead_letters_total)", 1.0)
        assert (prometheus.scalar("sum(influence_score_changes_total)") or 0) > 0
        _assert_model_info(prometheus, "native" if _native_built() else "python")
        _assert_rules_evaluate(prometheus)
    finally:
        replay.stdin.close()
        try:
            replay.wait(timeout=60)
        except subprocess.TimeoutExpired:
            replay.kill()
            replay.wait(timeout=30)
    assert replay.returncode == 0, log.read_text()

"""The deployment files in deploy/ are valid for the tools that read them, and agree with the code.

Checked with the real tools that run here: promtool (Debian's `prometheus`, installed by
deploy/prometheus/install.sh when missing) for the scrape config, the alert rules, their unit
tests and every PromQL expression of the dashboard; JSON Schema for the Compose file (the vendored
Compose Specification schema) and for Kubernetes objects (`kubernetes-validate`'s schemas;
minimal schemas below for the Strimzi and Prometheus Operator resources). Then the cross-checks no
schema can do: metric names against the worker's registry and docs/operations.md, environment
variables against `Settings`, topics against the pipeline's topic list.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipeline import commands
from pipeline.cli import build_parser
from pipeline.metrics import PipelineMetrics, Recovery, StateSize
from pipeline.settings import PREFIX, Settings, Topics
from pipeline.topics_admin import topic_names
from tests.tools import PROMETHEUS_INSTALL, PrometheusTools, ensure_prometheus

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PROM = DEPLOY / "prometheus"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "influence.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
OPERATIONS = REPO / "docs" / "operations.md"
K8S_VERSION = "1.30.0"
"""Kubernetes version the manifests are validated against (oldest supported release we target)."""
WORKER_IMAGE = "influence-stream"
REQUIRED_ALERTS = {
    "InfluenceConsumerLagGrowing",
    "InfluenceDeadLetterRate",
    "InfluenceNoEvents",
    "InfluenceRecoveryStuck",
    "InfluenceWorkerDown",
}
"""Issue 4: consumer lag growing, dead-letter rate, no events, recovery stuck, worker down."""
METRIC_NAME = re.compile(r"\binfluence_[a-z0-9_]+\b")


@pytest.fixture(scope="session")
def prometheus_tools() -> PrometheusTools:
    return ensure_prometheus()


def _promtool(tools: PrometheusTools, *args: str) -> str:
    proc = subprocess.run(
        [tools.promtool, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _yaml_docs(path):
            yield path, doc


def _k8s(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _k8s_objects() if doc["kind"] == kind]


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


# --- Prometheus: the real promtool --------------------------------------------------------------


def test_install_script_does_nothing_when_promtool_exists(
    prometheus_tools: PrometheusTools,
) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(PROMETHEUS_INSTALL)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # no apt-get run
    assert time.monotonic() - started < 10


def test_promtool_accepts_the_scrape_config(prometheus_tools: PrometheusTools) -> None:
    output = _promtool(prometheus_tools, "check", "config", str(PROM / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in output  # the config loads alerts.yml


def test_promtool_accepts_the_alert_rules(prometheus_tools: PrometheusTools) -> None:
    output = _promtool(prometheus_tools, "check", "rules", str(PROM / "alerts.yml"))
    assert f"SUCCESS: {len(_alert_rules())} rules found" in output


def test_alert_rule_unit_tests_pass(prometheus_tools: PrometheusTools) -> None:
    output = _promtool(prometheus_tools, "test", "rules", str(PROM / "alerts_test.yml"))
    assert "SUCCESS" in output


def test_alert_unit_tests_cover_every_alert_firing() -> None:
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in _alert_rules()}
    assert fired == names
    assert silent == names


def test_dashboard_queries_are_valid_promql(
    prometheus_tools: PrometheusTools, tmp_path: Path
) -> None:
    """Every panel query, with Grafana's variables filled in, parses as PromQL (via promtool)."""
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$instance", ".*"),
        }
        for i, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = _promtool(prometheus_tools, "check", "rules", str(path))
    assert f"SUCCESS: {len(rules)} rules found" in output


# --- Alerts: what operators need -----------------------------------------------------------------


def test_required_alerts_exist_with_runbooks_in_operations_doc() -> None:
    rules = _alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    headings = {
        line.removeprefix("### ").strip().lower()
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("### ")
    }
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert "for" in rule, rule["alert"]  # no alert on a single bad scrape
        runbook = annotations["runbook_url"]
        assert runbook == f"docs/operations.md#{rule['alert'].lower()}", runbook
        assert rule["alert"].lower() in headings, f"no '### {rule['alert']}' in operations.md"


# --- Metric names: rules, dashboard, docs and the worker's registry agree -------------------------


def _registry_names() -> dict[str, tuple[str, frozenset[str]]]:
    """Sample names the worker exposes, with their family type and label names."""
    metrics = PipelineMetrics("1.0.0+test")
    metrics.consumed("tweets", "tweet")
    metrics.invalid("bad_json")
    metrics.dead_letter("bad_json")
    metrics.duplicate("actor")
    metrics.score_change("engagement")
    metrics.latency(0.01)
    metrics.event_time(1_735_689_600_000)
    metrics.rebalance()
    metrics.lag_provider = lambda: {("tweets", 0): 3}
    metrics.state_provider = lambda: StateSize(2, 100)
    metrics.recovery_provider = lambda: Recovery(False, 0)
    names: dict[str, tuple[str, frozenset[str]]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = frozenset(sample.labels) - {"le"}
            names[sample.name] = (family.type, labels)
    return names


def _documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """The metric table of docs/operations.md: name → (type, labels)."""
    rows = re.findall(
        r"^\| `(influence_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", OPERATIONS.read_text(), re.M
    )
    assert rows, "no metric table in docs/operations.md"
    return {
        name: (kind, frozenset(x.strip() for x in labels.split(",") if x.strip() not in ("", "—")))
        for name, kind, labels in rows
    }


def _exposed_names(name: str, kind: str) -> set[str]:
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def test_operations_doc_lists_exactly_the_exposed_metrics() -> None:
    exposed = _registry_names()
    documented = _documented_metrics()
    expanded = {n for name, (kind, _) in documented.items() for n in _exposed_names(name, kind)}
    assert expanded == set(exposed)
    for name, (kind, labels) in documented.items():
        for sample in _exposed_names(name, kind):
            exposed_kind, exposed_labels = exposed[sample]
            assert exposed_labels == labels, name
            assert exposed_kind == kind, name


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_queried_is_exposed(source: str) -> None:
    exprs = [rule["expr"] for rule in _alert_rules()] if source == "alerts" else _dashboard_exprs()
    used = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert used, source
    assert used <= set(_registry_names()), used - set(_registry_names())


def test_dashboard_shows_what_issue_4_asks_for() -> None:
    used = {name for expr in _dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert used >= {
        "influence_events_consumed_total",
        "influence_consumer_lag_messages",
        "influence_processing_latency_seconds_bucket",
        "influence_dead_letters_total",
        "influence_score_changes_total",
        "influence_rebalances_total",
        "influence_event_time_lag_seconds",
        "influence_users_tracked",
        "influence_state_bytes",
    }
    exprs = " ".join(_dashboard_exprs())
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs


# --- Grafana --------------------------------------------------------------------------------------


def test_dashboard_uses_the_provisioned_datasource_and_a_clean_grid() -> None:
    datasource = yaml.safe_load(
        (GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"]
        assert all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
    assert datasource["url"] == "http://prometheus:9090"


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    provider = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "influence.yml").read_text())[
        "providers"
    ][0]
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# --- Docker Compose -------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(compose)]
    assert errors == []
    compose["services"]["worker"]["helthcheck"] = {}  # the schema does catch mistakes
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(compose))


def test_compose_wires_kafka_topics_workers_and_monitoring() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert services["topic-init"]["command"] == ["topics", "create"]
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    worker = services["worker"]
    assert "exec influence worker" in worker["entrypoint"][-1]
    assert "INFLUENCE_WEB_ADVERTISED_HOST=" in worker["entrypoint"][-1]
    assert worker["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    assert worker["deploy"]["replicas"] >= 2
    build = services["topic-init"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port} is published on every interface"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["job_name"] == "influence-worker"  # the rules and dashboard select on it
    assert scrape["dns_sd_configs"][0]["names"] == ["worker"]
    assert str(scrape["dns_sd_configs"][0]["port"]) == worker["environment"]["INFLUENCE_WEB_PORT"]


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments): comments dropped, lines
    continued with a backslash joined, as Docker's parser reads them."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "docker" / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _docker_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))  # type: ignore[misc]
    return env


def _exec_form(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be exec (JSON) form: a shell form would run under
    `sh -c`, and the worker would not get SIGTERM on `docker stop`."""
    values = [rest for k, rest in instructions if k == keyword]
    assert values, f"no {keyword}"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), values[-1]
    return parsed


def test_dockerfile_installs_the_packages_pyproject_declares() -> None:
    """The image is built from the Python the project requires, copies every package and file
    the build needs, and installs an extra that exists and brings the Kafka worker's deps."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    instructions = _dockerfile()
    base = [rest for k, rest in instructions if k == "FROM"]
    minimum = project["project"]["requires-python"].removeprefix(">=")
    assert base == [f"python:{minimum}-slim"]  # the interpreter the compiled core is built for
    copied = {
        Path(source).name
        for k, rest in instructions
        if k == "COPY"
        for source in shlex.split(rest)[:-1]
    }
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert copied >= packages | {"pyproject.toml", project["project"]["readme"]}
    installs = [
        arg
        for k, rest in instructions
        if k == "RUN" and "pip install" in rest
        for arg in shlex.split(rest.split("&&")[0])
        if arg.startswith(".[")
    ]
    assert len(installs) == 1, installs
    extras = installs[0].removeprefix(".[").removesuffix("]").split(",")
    declared = project["project"]["optional-dependencies"]
    assert set(extras) <= set(declared)
    needed = {re.split(r"[<>=\[ ]", dep)[0] for extra in extras for dep in declared[extra]}
    assert {"faust-streaming", "aiokafka", "rocksdict"} <= needed


def test_dockerfile_runs_the_worker_unprivileged_with_the_cli_and_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENTRYPOINT + CMD parse with `influence`'s own parser as the worker command, and the
    image's environment gives the worker the settings a container needs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    instructions = _dockerfile()
    entrypoint, cmd = _exec_form(instructions, "ENTRYPOINT"), _exec_form(instructions, "CMD")
    assert project["project"]["scripts"][entrypoint[0]] == "pipeline.cli:main"
    args = build_parser().parse_args([*entrypoint[1:], *cmd])
    assert args.run is commands.worker
    # compose's one-shot job and worker override CMD / ENTRYPOINT: those parse too
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert build_parser().parse_args(services["topic-init"]["command"]).run is commands.topics
    shell = shlex.split(services["worker"]["entrypoint"][-1])
    assert shell[shell.index("exec") + 1] == entrypoint[0]
    assert build_parser().parse_args(shell[shell.index("exec") + 2 :]).run is commands.worker

    user = [rest for k, rest in instructions if k == "USER"]
    assert len(user) == 1 and user[0].isdigit() and int(user[0]) != 0, user  # not root
    created = [rest for k, rest in instructions if k == "RUN" and "useradd" in rest]
    assert created and f"--uid {user[0]} " in created[0]

    env = _docker_env(instructions)
    assert (
        set(env)
        - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
        - {n for n in env if n.startswith("PIP_")}
        <= _setting_names()
    )
    for name in [n for n in os.environ if n.startswith(PREFIX) or n == "KAFKA_BOOTSTRAP_SERVERS"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = commands.settings_of(args)  # what `influence worker` runs with in the image
    workdir = [rest for k, rest in instructions if k == "WORKDIR"][-1]
    assert settings.data_dir == workdir  # the directory the unprivileged user owns
    assert settings.web_host == "0.0.0.0"
    exposed = [rest for k, rest in instructions if k == "EXPOSE"]
    assert exposed == [str(settings.web_port)]


class _Livez(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_dockerfile_healthcheck_probes_livez_on_the_web_port() -> None:
    """The HEALTHCHECK command, run as Docker runs it, succeeds against a server answering
    /livez on INFLUENCE_WEB_PORT and fails when nothing listens there."""
    instructions = _dockerfile()
    check = [rest for k, rest in instructions if k == "HEALTHCHECK"]
    assert len(check) == 1
    command = check[0][check[0].index("CMD ") + 4 :]
    server = http.server.HTTPServer(("127.0.0.1", 0), _Livez)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    env = {**os.environ, "INFLUENCE_WEB_PORT": str(port)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `python` is the image's
    try:
        ok = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    finally:
        server.shutdown()
        server.server_close()
    down = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert down.returncode != 0


# --- Settings: every variable set in a deployment is one the worker reads -------------------------


def _setting_names() -> set[str]:
    names = {PREFIX + f.name.upper() for f in fields(Settings) if f.name != "topics"}
    names |= {f"{PREFIX}TOPIC_{f.name.upper()}" for f in fields(Topics)}
    return names | {"KAFKA_BOOTSTRAP_SERVERS"}


def _compose_worker_envs() -> list[dict[str, str]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return [
        {k: str(v) for k, v in service["environment"].items()}
        for service in services.values()
        if service.get("image", "").startswith(WORKER_IMAGE)
    ]


def _k8s_worker_env() -> dict[str, str]:
    env = {k: str(v) for k, v in _k8s("ConfigMap")[0]["data"].items()}
    container = _k8s("StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0]
    env.update({item["name"]: item.get("value", "secret") for item in container.get("env", [])})
    # Downward-API values that other variables expand ($(POD_NAME)), not settings themselves.
    for helper in ("POD_NAME", "POD_NAMESPACE"):
        assert f"$({helper})" in env.get("INFLUENCE_WEB_ADVERTISED_HOST", "") or helper not in env
        env.pop(helper, None)
    return env


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_deployment_env_is_read_by_settings(where: str) -> None:
    envs = _compose_worker_envs() if where == "compose" else [_k8s_worker_env()]
    assert envs
    for env in envs:
        unknown = set(env) - _setting_names()
        assert not unknown, f"{where} sets variables no Setting reads: {sorted(unknown)}"
        settings = Settings.from_env(env)  # types convert, validate() passes
        assert settings.web_host == "0.0.0.0"  # reachable from Prometheus and other workers
        assert settings.store == "rocksdb://"


# --- Kubernetes -----------------------------------------------------------------------------------

_STR = {"type": "string", "minLength": 1}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _NAME, "labels": {"type": "object"}},
}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "kafka.strimzi.io/v1beta2/KafkaTopic": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {
                **_METADATA,
                "required": ["name", "labels"],
                "properties": {
                    "name": _NAME,
                    "labels": {"type": "object", "required": ["strimzi.io/cluster"]},
                },
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["partitions", "replicas"],
                "properties": {
                    "topicName": _STR,
                    "partitions": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "config": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean"]},
                    },
                },
            },
        },
    },
    "monitoring.coreos.com/v1/ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {
                        "type": "object",
                        "properties": {"matchLabels": {"type": "object"}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": _STR,
                                "path": _STR,
                                "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                                "relabelings": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    },
                },
            },
        },
    },
    "monitoring.coreos.com/v1/PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {"groups": {"type": "array", "minItems": 1}},
            },
        },
    },
    "kustomize.config.k8s.io/v1beta1/Kustomization": {
        "type": "object",
        "required": ["resources"],
        "properties": {"resources": {"type": "array", "items": _STR}},
    },
}
"""Minimal schemas (fields we use, their types) for the custom resources kubernetes-validate does
not know: Strimzi's KafkaTopic, the Prometheus Operator's ServiceMonitor and PrometheusRule,
kustomize's file. PrometheusRule groups are checked by promtool instead."""


def test_k8s_manifests_validate_against_their_schemas() -> None:
    seen = set()
    for path, doc in _k8s_objects():
        key = f"{doc['apiVersion']}/{doc['kind']}"
        seen.add(doc["kind"])
        if key in CRD_SCHEMAS:
            errors = list(jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).iter_errors(doc))
            assert not errors, f"{path.name} {key}: {[e.message for e in errors]}"
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert seen >= {
        "KafkaTopic",
        "ConfigMap",
        "StatefulSet",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
    }


def test_k8s_prometheus_rule_is_alerts_yml(
    prometheus_tools: PrometheusTools, tmp_path: Path
) -> None:
    rule = _k8s("PrometheusRule")[0]
    alerts = yaml.safe_load((PROM / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    path = tmp_path / "prometheusrule_groups.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    _promtool(prometheus_tools, "check", "rules", str(path))


def test_k8s_validation_catches_a_misspelt_probe() -> None:
    statefulset = _k8s("StatefulSet")[0]
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_kafka_topics_cover_every_topic_with_one_partition_count() -> None:
    env = _k8s_worker_env()
    settings = Settings.from_env(env)
    topics = {
        t["spec"].get("topicName", t["metadata"]["name"]): t["spec"] for t in _k8s("KafkaTopic")
    }
    changelog = f"{settings.app_id}-users-changelog"
    leader = f"{settings.app_id}-__assignor-__leader"
    assert set(topics) == {*topic_names(settings), changelog, leader}
    for name in [*topic_names(settings), changelog]:
        assert topics[name]["partitions"] == settings.partitions, name  # co-partitioned
        assert topics[name]["replicas"] >= settings.replication, name
    assert topics[leader]["partitions"] == 1
    assert topics[changelog]["config"]["cleanup.policy"] == "compact"
    assert topics[changelog]["config"]["retention.ms"] == "-1"


def test_statefulset_probes_volumes_and_services_fit_together() -> None:
    env = _k8s_worker_env()
    statefulset = _k8s("StatefulSet")[0]
    pod = statefulset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert (
        container["envFrom"][0]["configMapRef"]["name"] == _k8s("ConfigMap")[0]["metadata"]["name"]
    )
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["web"] == int(env["INFLUENCE_WEB_PORT"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "web"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    data = [name for name, path in mounts.items() if path == env["INFLUENCE_DATA_DIR"]]
    assert data and data[0] in claims  # RocksDB on a persistent volume per pod
    labels = pod["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = {s["metadata"]["name"]: s for s in _k8s("Service")}
    headless = services[statefulset["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    monitor = _k8s("ServiceMonitor")[0]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["endpoints"]} <= {
        p["name"] for p in headless["spec"]["ports"]
    }
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == env["INFLUENCE_WEB_PORT"]

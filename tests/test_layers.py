"""The house rules that imports can break, checked on the source: `scoring/` knows nothing of
the pipeline or Kafka, and the pure halves of the pipeline's split modules stay pure (so their
tests need no broker, no web server and no Faust app)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAFKA_AND_WEB = ("faust", "aiokafka", "confluent_kafka", "aiohttp", "prometheus_client", "yarl")
PURE = (
    "pipeline/api/replies.py",
    "pipeline/api/top.py",
    "pipeline/produce/loop.py",
    "pipeline/engine.py",
    "pipeline/replay.py",
    "pipeline/explorer/markup.py",
    "pipeline/explorer/charts.py",
    "pipeline/explorer/pages.py",
    "pipeline/explorer/routes.py",
    "pipeline/explorer/serve.py",
)
"""Pipeline modules whose job is plain code over data: they import (directly) no Kafka client,
web server or Faust."""


def imported(path: Path) -> set[str]:
    """Top-level package of every import in `path`, at any depth (a lazy import counts)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_scoring_imports_neither_the_pipeline_nor_kafka() -> None:
    for path in sorted((REPO / "scoring").rglob("*.py")):
        found = imported(path) & {"pipeline", *KAFKA_AND_WEB}
        assert not found, f"{path.relative_to(REPO)} imports {sorted(found)}"


def test_the_pure_pipeline_modules_import_no_kafka_client_or_web_server() -> None:
    for name in PURE:
        found = imported(REPO / name) & set(KAFKA_AND_WEB)
        assert not found, f"{name} imports {sorted(found)}"

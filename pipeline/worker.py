"""`influence worker`: run one Faust worker until SIGTERM/SIGINT (graceful: offsets committed,
tables flushed, partitions handed over)."""

from __future__ import annotations

import logging

from pipeline.settings import Settings
from scoring import load_model


def _worker_class() -> type:
    import faust

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            """mode leaves the root logger at DEBUG (handlers filter): every debug call in
            aiokafka and Faust then builds a log record, ~10 % of a busy worker's CPU."""
            super().on_setup_root_logger(logger, level)
            logger.setLevel(level or logging.INFO)

    return Worker


def run_worker(settings: Settings, loglevel: str = "info") -> int:

    from pipeline.kafka_app import create_app

    logging.basicConfig(level=loglevel.upper())
    model = load_model(settings.model_path)
    app = create_app(settings, model)
    worker = _worker_class()(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()  # returns only by raising SystemExit
    return 0

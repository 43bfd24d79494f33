"""`influence worker`: run one Faust worker until SIGTERM/SIGINT (graceful: offsets committed,
tables flushed, partitions handed over)."""

from __future__ import annotations

import logging

from pipeline.settings import Settings
from scoring import load_model


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    import faust

    from pipeline.kafka_app import create_app

    logging.basicConfig(level=loglevel.upper())
    model = load_model(settings.model_path)
    app = create_app(settings, model)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()  # returns only by raising SystemExit
    return 0

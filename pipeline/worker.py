"""`influence worker`: run one Faust worker until SIGTERM/SIGINT (graceful: offsets committed,
tables flushed, partitions handed over).

Before Faust starts, the worker claims its app's data directory (``<data dir>/<app id>``,
`Settings.app_data_dir`) with an exclusive lock: a second worker pointed at a directory in use
stops at once, naming it, instead of joining the group and dying half a minute later on
RocksDB's own lock. The lock is held for the life of the process; the OS releases it when the
process ends, ``kill -9`` included.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sys
from pathlib import Path

from pipeline.settings import Settings
from scoring import load_model

log = logging.getLogger(__name__)

LOCK_FILE = "worker.lock"
"""In the app's data directory; holds the pid of the worker that has the directory."""
_VERSION_DIR = re.compile(r"v\d+")
_claimed: list[int] = []
"""File descriptors of the locks this process holds (never closed: held until exit)."""


class DataDirError(Exception):
    """The worker cannot use its data directory (in use, or a store in the old layout)."""


def claim_data_dir(settings: Settings) -> Path:
    """Locks the app's data directory for this process (created if missing); returns it.

    Raises DataDirError when another process holds it."""
    app_dir = Path(settings.app_data_dir)
    app_dir.mkdir(parents=True, exist_ok=True)
    lock_path = app_dir / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        by = f" by process {holder}" if holder.isdigit() else ""
        raise DataDirError(
            f"data directory {app_dir.resolve()} is in use{by}: another worker of app id "
            f"{settings.app_id!r} runs on it. Give each worker its own --data-dir "
            "(INFLUENCE_DATA_DIR), a machine-local directory no other running worker uses."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _claimed.append(fd)
    return app_dir


def legacy_stores(settings: Settings) -> list[Path]:
    """Faust version directories (``<data dir>/v1``) holding tables in the layout before stores
    were kept per app id (``<data dir>/v1/tables/users-N.db``)."""
    data_dir = Path(settings.data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(
        version
        for version in data_dir.iterdir()
        if _VERSION_DIR.fullmatch(version.name)
        and (version / "tables").is_dir()
        and any((version / "tables").iterdir())
    )


def check_no_legacy_store(settings: Settings) -> None:
    """Refuses to start beside a store in the old layout, saying how to move it.

    The old layout records no app id: every app id run in the directory wrote there (the bug
    this layout fixes). Taking it for this worker's could hand the live store to a shadow or
    reprocessing worker, so the operator says whose it is, by moving it (or deletes it: the
    changelog is the durable copy)."""
    if settings.store.startswith("memory:"):
        return  # nothing of this worker's lives on disk
    found = legacy_stores(settings)
    if not found:
        return
    app_dir = Path(settings.app_data_dir).resolve()
    moves = "; ".join(f"mv {old.resolve()} {app_dir / old.name}" for old in found)
    raise DataDirError(
        f"{', '.join(str(old.resolve()) for old in found)} holds RocksDB tables in the layout "
        f"before stores were kept per app id; this worker (app id {settings.app_id!r}) keeps "
        f"its tables in {app_dir}. With no worker running on it: if that store is app id "
        f"{settings.app_id!r}'s, move it ({moves}) and the worker recovers only the changelog "
        "tail; if it is another app id's, move it under that app id's directory instead; or "
        "delete it, and the worker rebuilds its tables from the changelog "
        f"{settings.app_id}-users-changelog."
    )


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
    """Runs a worker on final settings (a shadow's own app id already set, see
    `pipeline.reprocess.worker_settings`); 2 at once when its data directory is unusable."""
    logging.basicConfig(level=loglevel.upper())
    try:
        app_dir = claim_data_dir(settings)
        check_no_legacy_store(settings)
    except DataDirError as exc:
        print(f"influence: {exc}", file=sys.stderr)
        return 2
    log.info("app id %s: tables in %s (locked by this worker)", settings.app_id, app_dir)
    from pipeline.kafka_app import create_app
    from pipeline.reprocess import create_own_topics
    from pipeline.topics_admin import with_replication

    settings = with_replication(settings)  # Faust's changelog: as many replicas as the topics
    create_own_topics(settings)
    model = load_model(settings.model_path)
    app = create_app(settings, model)
    worker = _worker_class()(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()  # returns only by raising SystemExit
    return 0

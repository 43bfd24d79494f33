"""Where a worker keeps its RocksDB tables: a directory per app id (and so per shadow version),
locked by the worker that uses it; a store in the layout before that is never taken silently."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import worker
from pipeline.reprocess import shadow_settings
from pipeline.settings import Settings
from pipeline.worker import DataDirError, check_no_legacy_store, claim_data_dir, run_worker
from scoring import load_model


@pytest.fixture(autouse=True)
def release_claims() -> Iterator[None]:
    yield
    while worker._claimed:
        os.close(worker._claimed.pop())


def table_path(settings: Settings, partition: int = 0) -> Path:
    pytest.importorskip("faust")
    from pipeline.kafka_app import create_app

    app = create_app(settings, load_model(None))
    path: Path = app.influence.table.data.partition_path(partition)  # type: ignore[attr-defined]
    return path


def test_the_tables_path_holds_the_app_id_so_app_ids_and_shadows_never_share_a_store(
    tmp_path: Path,
) -> None:
    live = Settings(app_id="influence", data_dir=str(tmp_path), store="rocksdb://")
    other = Settings(app_id="influence-v2", data_dir=str(tmp_path), store="rocksdb://")
    shadow = shadow_settings(live, load_model(None))
    paths = {s.app_id: table_path(s) for s in (live, other, shadow)}
    assert len(set(paths.values())) == 3
    for app_id, path in paths.items():
        assert path.is_relative_to(tmp_path / app_id), path
        assert path.name == "users-0.db"
    assert shadow.app_id.startswith("influence-shadow-")


def test_an_app_id_that_cannot_name_a_directory_is_refused() -> None:
    for app_id in ("../elsewhere", "a/b", "..", ""):
        with pytest.raises(ValueError, match="app id"):
            Settings.from_env({"INFLUENCE_APP_ID": app_id})


def test_a_second_claim_on_a_directory_in_use_fails_naming_it(tmp_path: Path) -> None:
    settings = Settings(app_id="influence", data_dir=str(tmp_path / "data"))
    app_dir = claim_data_dir(settings)
    assert app_dir == tmp_path / "data" / "influence"
    assert (app_dir / worker.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(DataDirError, match=f"{app_dir} is in use by process {os.getpid()}"):
        claim_data_dir(settings)
    claim_data_dir(Settings(app_id="influence-v2", data_dir=str(tmp_path / "data")))  # its own


def test_a_worker_on_a_directory_in_use_exits_at_once_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(app_id="influence", data_dir=str(tmp_path), bootstrap_servers="0.0.0.0:1")
    claim_data_dir(settings)
    assert run_worker(settings, loglevel="warning") == 2  # before any broker or Faust
    assert f"data directory {tmp_path / 'influence'} is in use" in capsys.readouterr().err


def test_a_store_in_the_old_layout_is_refused_with_how_to_move_it(tmp_path: Path) -> None:
    old = tmp_path / "v1"
    (old / "tables" / "users-0.db").mkdir(parents=True)
    settings = Settings(app_id="influence", data_dir=str(tmp_path), store="rocksdb://")
    with pytest.raises(DataDirError) as refused:
        check_no_legacy_store(settings)
    assert f"mv {old} {tmp_path / 'influence' / 'v1'}" in str(refused.value)
    assert "influence-users-changelog" in str(refused.value)
    check_no_legacy_store(Settings(app_id="influence", data_dir=str(tmp_path), store="memory://"))
    (tmp_path / "influence").mkdir()
    old.rename(tmp_path / "influence" / "v1")  # what the message says
    check_no_legacy_store(settings)
    assert table_path(settings).parent == tmp_path / "influence" / "v1" / "tables"

"""Under exactly-once a batch's users wait beside the store until their transaction commits
(`pipeline.uncommitted`), and the transaction manager says when one has
(`faust_compat.SourcePartitionTransactions.commit`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced
from faust.types import TP

from pipeline import faust_compat
from pipeline.faust_compat import SourcePartitionTransactions, listen_to_commits
from pipeline.uncommitted import Uncommitted


def test_users_wait_beside_the_store_until_their_transaction_commits() -> None:
    store: dict[bytes, bytes] = {b"old": b"1"}
    users = Uncommitted(store)
    users.add(0, "app-0-0", "event", {b"new": b"2", b"old": b"3"}, None)
    assert store == {b"old": b"1"}  # a kill now aborts the records: the store must not have them
    assert (users[b"new"], users[b"old"], users.get(b"none")) == (b"2", b"3", None)
    assert sorted(users) == [b"new", b"old"] and len(users) == 2
    written = users.committed("app-0-0", users.mark())
    assert [w.users for w in written] == [{b"new": b"2", b"old": b"3"}]
    assert users.latest == {}


def test_a_batch_added_after_a_commit_began_waits_for_the_next() -> None:
    """Its records were sent after that commit began: they may be in the next transaction."""
    users = Uncommitted({})
    users.add(0, "t", None, {b"a": b"1"}, None)
    mark = users.mark()
    users.add(0, "t", None, {b"b": b"2"}, None)
    assert [w.users for w in users.committed("t", mark)] == [{b"a": b"1"}]
    assert users[b"b"] == b"2" and list(users.latest) == [b"b"]
    assert [w.users for w in users.committed("t", users.mark())] == [{b"b": b"2"}]


def test_a_partitions_batches_reach_the_store_in_order_across_its_transactions() -> None:
    """A partition's users change in its input transaction and its repartition one; the
    newer state, committed first, must not be overwritten by the older one afterwards."""
    users = Uncommitted({})
    users.add(0, "inputs-0", "e1", {b"u": b"old"}, None)
    users.add(0, "engagements-0", "e2", {b"u": b"new"}, None)
    users.add(1, "inputs-1", "e3", {b"v": b"1"}, None)
    assert users.committed("engagements-0", users.mark()) == []  # behind inputs-0's batch
    assert users[b"u"] == b"new"
    written = users.committed("inputs-0", users.mark())
    assert [(w.event, w.users[b"u"]) for w in written] == [("e1", b"old"), ("e2", b"new")]
    assert b"u" not in users.latest and users[b"v"] == b"1"


def test_what_waits_is_dropped_when_partitions_move() -> None:
    users = Uncommitted({b"u": b"stored"})
    users.add(0, "t", None, {b"u": b"waiting"}, None)
    users.drop()
    assert users[b"u"] == b"stored"
    assert users.committed("t", users.mark()) == []


def test_a_forgotten_user_is_not_brought_back_by_its_waiting_state() -> None:
    deleted: list[bytes] = []

    class Table(dict[bytes, bytes]):
        def __delitem__(self, key: bytes) -> None:  # Faust's table: sends the tombstone
            deleted.append(key)
            super().__delitem__(key)

    users = Uncommitted(Table())
    users.add(0, "t", None, {b"u": b"1", b"w": b"2"}, None)
    del users[b"u"]
    assert deleted == [b"u"]  # the table's delete ran (its tombstone), though only waiting
    assert b"u" not in users
    assert [w.users for w in users.committed("t", users.mark())] == [{b"w": b"2"}]
    with pytest.raises(KeyError):
        del users[b"nobody"]


class Listener:
    def __init__(self) -> None:
        self.marks = 0
        self.told: list[tuple[str, int]] = []

    def mark(self) -> int:
        self.marks += 1
        return self.marks

    def committed(self, transaction: str, mark: int) -> None:
        self.told.append((transaction, mark))


def transactions(commit: Any) -> tuple[SourcePartitionTransactions, Any]:
    crashed: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    class App(SimpleNamespace):  # hashed by identity and weakly referenced, as faust.App
        __hash__ = object.__hash__  # type: ignore[assignment]

    app = App(
        conf=SimpleNamespace(id="app"),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 0 if topic == "in" else 1),
        crash=crash,
        crashed=crashed,
    )
    manager = object.__new__(SourcePartitionTransactions)
    manager.app = app  # type: ignore[assignment]
    manager.producer = SimpleNamespace(commit_transactions=commit)  # type: ignore[assignment]
    return manager, app


def test_each_committed_transaction_is_told_with_the_mark_before_its_commit() -> None:
    committed: list[object] = []

    async def commit(offsets: Any, group: str, start_new_transaction: bool = True) -> None:
        committed.append((offsets, group, start_new_transaction))

    manager, app = transactions(commit)
    listener = Listener()
    listen_to_commits(app, listener)
    offsets = {TP("in", 0): 5, TP("in", 1): 7, TP("eng", 0): 9}
    assert asyncio.run(manager.commit(offsets)) is True
    assert committed == [
        ({"app-0-0": {TP("in", 0): 5}}, "app", True),
        ({"app-0-1": {TP("in", 1): 7}}, "app", True),
        ({"app-1-0": {TP("eng", 0): 9}}, "app", True),
    ]
    assert listener.told == [("app-0-0", 1), ("app-0-1", 2), ("app-1-0", 3)]
    assert faust_compat.transaction_of(app, TP("eng", 3)) == "app-1-3"


def test_a_fenced_commit_crashes_the_app_and_is_not_reported_done() -> None:
    async def commit(offsets: Any, group: str, start_new_transaction: bool = True) -> None:
        raise ProducerFenced()

    manager, app = transactions(commit)
    listener = Listener()
    listen_to_commits(app, listener)
    assert asyncio.run(manager.commit({TP("in", 0): 5})) is False
    assert listener.told == [] and len(app.crashed) == 1

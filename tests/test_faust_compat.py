"""The private Faust and aiokafka names the pipeline depends on, checked against the INSTALLED
faust-streaming and aiokafka (no fakes): each name exists, each overridden or called method has
the signature our code expects, Faust still calls the methods we override, and no module but
`pipeline/faust_compat.py` and `pipeline/consumer.py` touches those names.

An upgrade that renames or reshapes one fails here, with a message naming what changed, instead
of passing the quick suite (whose unit tests fake those fields) and breaking a worker. The
inventory is the docstring of `pipeline/faust_compat.py`; every entry has a check here.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiokafka
import faust
import faust.events
import faust.stores.memory
import faust.stores.rocksdb
import faust.tables.base
import faust.tables.manager
import faust.tables.recovery
import faust.transport.consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
import pytest
from faust.streams import Stream
from faust.types import TP, Message
from faust.types.tuples import RecordMetadata
from intervaltree import IntervalTree

from pipeline import faust_compat
from pipeline.consumer import AtLeastOnceConsumer
from pipeline.faust_compat import IdempotentProducer, SourcePartitionTransactions

REPO = Path(__file__).resolve().parents[1]
FAUST_CONSUMER = faust.transport.consumer.Consumer
"""Faust's transport-independent consumer: the offsets, the fetch loop, the commit rule."""
AIOKAFKA_CONSUMER = faust_aiokafka.Consumer
"""Faust's aiokafka consumer, which `AtLeastOnceConsumer` extends."""
TRANSACTIONS = faust.transport.consumer.TransactionManager

OVERRIDES: list[tuple[type, str]] = [
    (AtLeastOnceConsumer, "perform_seek"),
    (AtLeastOnceConsumer, "getmany"),
    (AtLeastOnceConsumer, "_new_offset"),
    (AtLeastOnceConsumer, "_getmany"),
    (SourcePartitionTransactions, "send"),
    (SourcePartitionTransactions, "commit"),
    (IdempotentProducer, "_settings_extra"),
]
"""(our class, method): methods of Faust's that we replace."""

CALLED: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    # (what, Faust's function, the positional arguments after self, keywords), as our code
    # calls them
    (
        "TransactionManager.send (faust_compat.send_record, under exactly-once)",
        TRANSACTIONS.send,
        ("topic", b"k", b"v", 0, None, None),
        {},
    ),
    (
        "aiokafka Producer.send (faust_compat.send_record, SourcePartitionTransactions.send)",
        faust_aiokafka.Producer.send,
        ("topic", b"k", b"v", 0, None, None),
        {"transactional_id": "app-0-1"},
    ),
    (
        "aiokafka Producer.commit_transactions (SourcePartitionTransactions.commit)",
        faust_aiokafka.Producer.commit_transactions,
        ({"app-0-1": {TP("t", 1): 5}}, "app"),
        {"start_new_transaction": True},
    ),
    (
        "aiokafka Consumer.key_partition (SourcePartitionTransactions.send)",
        AIOKAFKA_CONSUMER.key_partition,
        ("topic", b"k", 0),
        {},
    ),
    (
        "TableManager.persist_offset_on_commit (faust_compat.persist_changelog_offset)",
        faust.tables.manager.TableManager.persist_offset_on_commit,
        (object(), TP("t", 0), 1),
        {},
    ),
    (
        "memory Store.set_persisted_offset (faust_compat.persist_changelog_offset)",
        faust.stores.memory.Store.set_persisted_offset,
        (TP("t", 0), 1),
        {},
    ),
    (
        "rocksdb Store.set_persisted_offset (faust_compat.persist_changelog_offset)",
        faust.stores.rocksdb.Store.set_persisted_offset,
        (TP("t", 0), 1),
        {},
    ),
    (
        "Recovery.active_remaining_total (faust_compat.recovery_progress)",
        faust.tables.recovery.Recovery.active_remaining_total,
        (),
        {},
    ),
    (
        "Consumer._is_changelog_tp (AtLeastOnceConsumer)",
        AIOKAFKA_CONSUMER._is_changelog_tp,
        (TP("t", 0),),
        {},
    ),
    ("Consumer.seek (AtLeastOnceConsumer)", AIOKAFKA_CONSUMER.seek, (TP("t", 0), 5), {}),
    ("Consumer.assignment (AtLeastOnceConsumer)", AIOKAFKA_CONSUMER.assignment, (), {}),
    (
        "Consumer.earliest_offsets (AtLeastOnceConsumer)",
        AIOKAFKA_CONSUMER.earliest_offsets,
        (TP("t", 0), TP("t", 1)),
        {},
    ),
    ("Consumer.highwater (Pipeline.has_more)", AIOKAFKA_CONSUMER.highwater, (TP("t", 0),), {}),
    (
        "Faust's aiokafka thread seek_to_committed (Consumer.perform_seek)",
        faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed,
        (),
        {},
    ),
    (
        "aiokafka AIOKafkaConsumer.seek_to_committed (through Faust's perform_seek)",
        aiokafka.AIOKafkaConsumer.seek_to_committed,
        (),
        {},
    ),
    ("IntervalTree.addi (AtLeastOnceConsumer._skipped)", IntervalTree.addi, (0, 10), {}),
    ("IntervalTree.chop (AtLeastOnceConsumer._skipped)", IntervalTree.chop, (0, 10), {}),
]

CALL_SITES: list[tuple[str, Callable[..., Any], str]] = [
    # (what would stop working, Faust's function, what its source must still contain)
    (
        "AtLeastOnceConsumer.getmany: Faust's fetch loop no longer reads self.getmany",
        FAUST_CONSUMER._drain_messages,
        "self.getmany",
    ),
    (
        "AtLeastOnceConsumer._getmany: Faust's getmany no longer fetches through self._getmany",
        FAUST_CONSUMER._wait_next_records,
        "await self._getmany(",
    ),
    (
        "AtLeastOnceConsumer._positions: Faust's thread no longer keeps aiokafka's consumer"
        " in _consumer",
        faust_aiokafka.AIOKafkaConsumerThread._ensure_consumer,
        "self._consumer",
    ),
    (
        "AtLeastOnceConsumer._new_offset: Faust's commit no longer calls self._new_offset",
        FAUST_CONSUMER._filter_committable_offsets,
        "self._new_offset(tp)",
    ),
    (
        "AtLeastOnceConsumer.perform_seek: table recovery no longer awaits perform_seek",
        faust.tables.recovery.Recovery.on_recovery_completed,
        "consumer.perform_seek()",
    ),
    (
        "AtLeastOnceConsumer._rewind_uncommitted: Faust's perform_seek no longer runs"
        " seek_to_committed",
        FAUST_CONSUMER.perform_seek,
        "self.seek_to_committed()",
    ),
    (
        "faust_compat.persist_changelog_offset copies _on_changelog_sent, which changed"
        " (exactly-once branch)",
        faust.tables.base.Collection._on_changelog_sent,
        "self.app.tables.persist_offset_on_commit(",
    ),
    (
        "faust_compat.persist_changelog_offset copies _on_changelog_sent, which changed"
        " (at-least-once branch)",
        faust.tables.base.Collection._on_changelog_sent,
        "self.data.set_persisted_offset(res.topic_partition, res.offset)",
    ),
    (
        "SourcePartitionTransactions names a transaction as Faust's commit does; that changed",
        TRANSACTIONS.commit,
        'transactional_id = f"{group_id}-{group}-{tp.partition}"',
    ),
    (
        "SourcePartitionTransactions.commit copies Faust's commit, which no longer commits"
        " through producer.commit_transactions",
        TRANSACTIONS.commit,
        "await producer.commit_transactions(",
    ),
    (
        "SourcePartitionTransactions.commit: Faust's consumer no longer commits through"
        " self.transactions.commit",
        FAUST_CONSUMER._commit_offsets,
        "await self.transactions.commit(",
    ),
    (
        "faust_compat.as_current sets _current_event to a weakref, as Faust's streams do",
        Stream._set_current_event,
        "_current_event.set(weakref.ref(event))",
    ),
]

PRIVATE_NAMES = frozenset(
    {
        "_current_event",
        "_read_offset",
        "_committed_offset",
        "_acked",
        "_acked_index",
        "_gap",
        "_new_offset",
        "_getmany",
        "_thread",
        "_subscription",
        "_is_changelog_tp",
        "_on_changelog_sent",
        "_drain_messages",
        "TransactionManager",
        "transactions",
        "in_transaction",
        "consumer_generation_id",
        "generation_id",
        "persist_offset_on_commit",
        "set_persisted_offset",
        "perform_seek",
        "seek_to_committed",
        "rebalancing",
        "in_recovery",
        "active_remaining_total",
        "data",
    }
)
"""Identifiers (attributes, names, imports, getattr strings) only the compat modules use."""
COMPAT_MODULES = {"pipeline/faust_compat.py", "pipeline/consumer.py"}


def shape(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (annotations differ in spelling only)."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def faust_original(cls: type, name: str) -> Any:
    """The method `cls` overrides: the first definition of `name` above `cls` in its MRO."""
    for base in cls.__mro__[1:]:
        if name in vars(base):
            return vars(base)[name]
    return None


@pytest.mark.parametrize(("cls", "name"), OVERRIDES, ids=lambda x: getattr(x, "__name__", x))
def test_each_override_replaces_a_faust_method_of_the_same_signature(cls: type, name: str) -> None:
    theirs = faust_original(cls, name)
    where = f"{cls.__module__}.{cls.__name__}.{name}"
    assert theirs is not None, f"{where} overrides nothing: Faust no longer has {name!r}"
    ours = vars(cls)[name]
    assert shape(inspect.signature(ours)) == shape(inspect.signature(theirs)), (
        f"{where}: Faust's {theirs.__qualname__} is now {inspect.signature(theirs)}; "
        f"the override expects {inspect.signature(ours)}"
    )
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), (
        f"{where}: Faust's {theirs.__qualname__} changed between async and sync"
    )
    assert inspect.isasyncgenfunction(ours) == inspect.isasyncgenfunction(theirs) or (
        name == "getmany"  # ours is an async generator; Faust's returns an async iterator
    ), f"{where}: Faust's {theirs.__qualname__} changed between generator and not"


@pytest.mark.parametrize(("what", "function", "args", "kwargs"), CALLED, ids=lambda x: str(x))
def test_each_faust_function_we_call_takes_the_arguments_we_pass(
    what: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    signature = inspect.signature(function)
    try:
        signature.bind(None, *args, **kwargs)  # None for self
    except TypeError as exc:
        pytest.fail(f"{what}: its signature is now {signature}; we call it so: {exc}")


@pytest.mark.parametrize(("what", "function", "needle"), CALL_SITES, ids=lambda x: str(x)[:40])
def test_faust_still_calls_what_we_override_and_does_what_we_copied(
    what: str, function: Callable[..., Any], needle: str
) -> None:
    source = inspect.getsource(function)
    assert needle in source, f"{what}: {function.__qualname__} no longer contains {needle!r}"


@pytest.fixture(scope="module")
def app() -> Iterator[faust.App]:
    """A real Faust app with the pipeline's transport installed; never started (no broker)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    built = faust.App(
        "compat-check",
        broker="kafka://127.0.0.1:1",
        autodiscover=False,
        web_enabled=False,
        processing_guarantee="exactly_once",
    )
    faust_compat.install_transport(built)
    built.Table("users", default=None, partitions=2, key_type=bytes, value_type=bytes)
    yield built
    asyncio.set_event_loop(None)
    loop.close()


def test_the_transport_hooks_build_our_consumer_and_transaction_manager(app: faust.App) -> None:
    consumer = app.consumer
    assert isinstance(consumer, AtLeastOnceConsumer), (
        f"app.transport.Consumer no longer decides the consumer class: got {type(consumer)}"
    )
    assert isinstance(consumer.transactions, SourcePartitionTransactions), (
        "app.transport.TransactionManager no longer decides consumer.transactions: got "
        f"{type(consumer.transactions)}"
    )
    assert isinstance(app.producer, IdempotentProducer), (
        f"app.transport.Producer no longer decides the producer class: got {type(app.producer)}"
    )
    for name in ("app", "consumer", "producer"):
        assert hasattr(consumer.transactions, name), f"TransactionManager has no {name!r} any more"
    assert callable(app.assignor.group_for_topic), "app.assignor.group_for_topic is gone"


def test_the_producer_faust_builds_is_idempotent_with_acks_all() -> None:
    """Under at-least-once too (no transaction): Faust's `_new_producer` still merges
    `_settings_extra`, and our transport hook still decides the producer class."""
    previous = asyncio.get_event_loop()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        built = faust.App("compat-idempotent", broker="kafka://127.0.0.1:1", autodiscover=False)
        faust_compat.install_transport(built)
        assert not built.in_transaction

        async def build() -> Any:
            producer = built.producer._new_producer()  # type: ignore[attr-defined]
            await producer.stop()  # never started: only its options are looked at
            return producer

        made = loop.run_until_complete(build())
    finally:
        asyncio.set_event_loop(previous)
        loop.close()
    assert made._txn_manager is not None, "the worker's producer is not idempotent"
    assert made._txn_manager.transactional_id is None


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("_read_offset", None),
        ("_committed_offset", None),
        ("_acked", []),
        ("_acked_index", set()),
        ("_gap", IntervalTree()),
    ],
)
def test_the_consumer_keeps_the_offset_fields_we_read(
    app: faust.App, field: str, default: Any
) -> None:
    consumer = app.consumer
    assert hasattr(consumer, field), f"Faust's Consumer has no field {field!r} any more"
    value = getattr(consumer, field)
    assert isinstance(value, defaultdict), (
        f"Faust's Consumer.{field} is no longer a defaultdict: {type(value).__name__}"
    )
    assert value.default_factory is not None and value.default_factory() == default, (
        f"Faust's Consumer.{field} now defaults to {value.default_factory!r}, not {default!r}"
    )


def test_offset_accessors_read_the_real_consumer(app: faust.App) -> None:
    consumer, tp = app.consumer, TP("inputs", 0)
    assert faust_compat.read_offset(consumer, tp) is None
    assert faust_compat.committed_offset(consumer, tp) is None
    consumer._read_offset[tp], consumer._committed_offset[tp] = 7, 5
    try:
        assert faust_compat.read_offset(consumer, tp) == 7
        assert faust_compat.committed_offset(consumer, tp) == 5
    finally:
        del consumer._read_offset[tp], consumer._committed_offset[tp]


def test_the_fetch_positions_are_read_from_aiokafkas_subscription_state(app: faust.App) -> None:
    """`AtLeastOnceConsumer._positions` reads Faust's thread's aiokafka consumer, its
    subscription state, the assignment's partition states and their positions."""
    consumer = app.consumer
    assert isinstance(consumer, AtLeastOnceConsumer)
    assert hasattr(consumer._thread, "_consumer"), "Faust's consumer thread has no _consumer"
    assert consumer._positions() == {}  # not started: no aiokafka consumer yet
    tp = aiokafka.TopicPartition("inputs", 0)

    async def subscribed() -> Any:  # aiokafka's state wants a running loop
        state = aiokafka.consumer.subscription_state.SubscriptionState()
        state.assign_from_user({tp})
        return state

    state = asyncio.run(subscribed())
    assignment = state.subscription.assignment
    assert assignment.tps == {tp}
    partition = assignment.state_value(tp)
    assert partition.has_valid_position is False
    partition.seek(42)
    assert (partition.has_valid_position, partition.position) == (True, 42)
    real = aiokafka.AIOKafkaConsumer.__new__(aiokafka.AIOKafkaConsumer)
    real._subscription = state
    thread = consumer._thread
    saved = thread._consumer
    thread._consumer = real
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AIOKAFKA_CONSUMER, "_is_changelog_tp", lambda self, tp: False)
            assert consumer._positions() == {tp: 42}
    finally:
        thread._consumer = saved


def test_app_flags_and_generations_exist(app: faust.App) -> None:
    for name in ("rebalancing", "consumer_generation_id", "in_transaction"):
        assert hasattr(app, name), f"faust.App has no {name!r} any more"
    assert faust_compat.rebalancing(app) is False
    assert isinstance(faust_compat.consumer_generation(app), int)
    assert app.in_transaction is False  # a worker's property: not in a worker here
    assert "generation_id" in Message.__slots__, "faust Message has no generation_id any more"


def test_tables_store_recovery_and_changelog_offsets(app: faust.App) -> None:
    table = app.tables["users"]
    store = faust_compat.store_of(table)
    assert isinstance(store, faust.stores.memory.Store)
    for field in ("topic_partition", "offset"):
        assert field in RecordMetadata._fields, f"RecordMetadata has no {field!r} any more"
    metadata = RecordMetadata("t", 0, TP("t", 0), 3, 0.0, None)
    faust_compat.persist_changelog_offset(app, table, metadata)  # memory store: no-op
    recovery = app.tables.recovery
    for name in ("completed", "in_recovery"):
        assert hasattr(recovery, name), f"faust Recovery has no {name!r} any more"
    assert callable(recovery.completed.is_set)
    assert faust_compat.recovery_done(app) is False
    assert faust_compat.recovery_progress(app) == (False, 0)


def test_as_current_makes_an_event_faust_current_and_restores_it() -> None:
    event: Any = object.__new__(faust.events.Event)
    assert faust_compat.current_event() is None
    with faust_compat.as_current(event):
        assert faust.streams.current_event() is event
    assert faust_compat.current_event() is None


def _identifiers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Attributes read or written, names imported from Faust or aiokafka, and getattr-style
    strings (not local names, comments or docstrings)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
            "faust",
            "aiokafka",
        }:
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
        ):
            yield node.lineno, str(node.args[1].value)


def test_only_the_compat_modules_touch_fausts_private_names() -> None:
    found = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        if name in COMPAT_MODULES:
            continue
        for line, identifier in _identifiers(ast.parse(path.read_text(), name)):
            if identifier in PRIVATE_NAMES:
                found.append(f"{name}:{line}: {identifier}")
    assert not found, "Faust internals outside pipeline/faust_compat.py: " + ", ".join(found)

"""Round trips through the real broker with aiokafka: admin, produce/consume, transactions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

try:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
except ImportError:  # the kafka_bootstrap fixture fails each test with the install hint
    pass

T = TypeVar("T")

TIMEOUT_S = 60.0


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Runs one coroutine on a fresh event loop, bounded by TIMEOUT_S."""

    async def bounded() -> T:
        return await asyncio.wait_for(make(), TIMEOUT_S)

    return asyncio.run(bounded())


def unique(name: str) -> str:
    return f"it-{name}-{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
        # CreateTopics is answered once the controller has committed the topic; the broker's
        # metadata cache learns of it a moment later (UNKNOWN_TOPIC_OR_PARTITION until then).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            described = await admin.describe_topics([topic])
            if described[0]["error_code"] == 0 or loop.time() > deadline:
                break
            await asyncio.sleep(0.1)
        assert described[0]["error_code"] == 0, described
        assert len(described[0]["partitions"]) == partitions
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def read_until(
    consumer: AIOKafkaConsumer, done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool]
) -> list[ConsumerRecord[bytes, bytes]]:
    records: list[ConsumerRecord[bytes, bytes]] = []
    while not done(records):
        batch = await consumer.getmany(timeout_ms=500)
        for part in batch.values():
            records.extend(part)
    return records


async def committed_offsets(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    seconds: float,
    until: Callable[[int | None], bool] = lambda _: False,
) -> list[int | None]:
    """The group's committed offsets for ``tp``, polled every 0.1 s for at most ``seconds``
    (less once ``until`` holds for one)."""
    seen: list[int | None] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        seen.append(await consumer.committed(tp))
        if until(seen[-1]):
            break
        await asyncio.sleep(0.1)
    return seen


def test_topic_with_four_partitions_round_trip(kafka_bootstrap: str) -> None:
    topic = unique("roundtrip")
    group = unique("group")
    per_partition = 25

    async def scenario() -> None:
        await create_topic(kafka_bootstrap, topic, 4)

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            assert await producer.partitions_for(topic) == {0, 1, 2, 3}
            sends = [
                await producer.send(
                    topic, key=f"k{p}".encode(), value=f"{p}:{i}".encode(), partition=p
                )
                for i in range(per_partition)
                for p in range(4)
            ]
            metadata = await asyncio.gather(*sends)
        finally:
            await producer.stop()
        assert {m.partition for m in metadata} == {0, 1, 2, 3}

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        await consumer.start()
        try:
            records = await read_until(consumer, lambda r: len(r) >= 4 * per_partition)
            await consumer.commit()
            committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(4)}
        finally:
            await consumer.stop()

        assert len(records) == 4 * per_partition
        for p in range(4):
            values = [r.value for r in records if r.partition == p]
            # Order is kept within a partition, and each partition got only its own messages.
            assert values == [f"{p}:{i}".encode() for i in range(per_partition)]
            assert {r.key for r in records if r.partition == p} == {f"k{p}".encode()}
        assert committed == dict.fromkeys(range(4), per_partition)

        await delete_topic(kafka_bootstrap, topic)

    run(scenario)


def test_transactions_read_committed_sees_only_committed(kafka_bootstrap: str) -> None:
    topic = unique("txn")

    async def scenario() -> None:
        await create_topic(kafka_bootstrap, topic, 1)

        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=unique("txn-producer")
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed-1")
                await producer.send_and_wait(topic, b"committed-2")

            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted-1")
            await producer.send_and_wait(topic, b"aborted-2")
            await producer.abort_transaction()

            # A last committed transaction after the aborted one: read_committed must skip the
            # aborted batch in the middle of the log, not just stop before it.
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed-3")
        finally:
            await producer.stop()

        async def read(isolation_level: str, expected: int) -> list[bytes]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=kafka_bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                isolation_level=isolation_level,
            )
            await consumer.start()
            try:
                consumer.assign([TopicPartition(topic, 0)])
                await consumer.seek_to_beginning()
                records = await read_until(
                    consumer, lambda r: len(r) >= expected or b"committed-3" in {x.value for x in r}
                )
                # Anything read after the last committed message would be a bug, too.
                records += await read_until(consumer, lambda r: True)
                return [r.value for r in records]
            finally:
                await consumer.stop()

        assert await read("read_committed", 3) == [b"committed-1", b"committed-2", b"committed-3"]
        # The aborted messages were really written: read_uncommitted sees them.
        assert await read("read_uncommitted", 5) == [
            b"committed-1",
            b"committed-2",
            b"aborted-1",
            b"aborted-2",
            b"committed-3",
        ]

        await delete_topic(kafka_bootstrap, topic)

    run(scenario)


def test_transactional_consume_transform_produce_commits_offsets(kafka_bootstrap: str) -> None:
    """What Faust's exactly_once does: output and input offsets in one transaction."""
    source, sink = unique("eos-in"), unique("eos-out")
    group = unique("eos-group")

    async def scenario() -> None:
        await create_topic(kafka_bootstrap, source, 1)
        await create_topic(kafka_bootstrap, sink, 1)
        tp_in = TopicPartition(source, 0)

        plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await plain.start()
        try:
            for i in range(4):
                await plain.send_and_wait(source, f"in-{i}".encode())
        finally:
            await plain.stop()

        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=unique("eos-producer")
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await producer.start()
        await consumer.start()
        try:
            consumer.assign([tp_in])
            records = await read_until(consumer, lambda r: len(r) >= 4)
            first, second = records[:2], records[2:4]

            # Transform the first two and commit output + offsets atomically.
            async with producer.transaction():
                for r in first:
                    await producer.send_and_wait(sink, r.value.replace(b"in", b"out"))
                await producer.send_offsets_to_transaction({tp_in: first[-1].offset + 1}, group)
            # The broker writes the commit markers after EndTxn has been answered, and
            # aiokafka's OffsetFetch (v<7) has no require_stable: the offset shows up a moment
            # later (about 0.25 s here), not when commit_transaction() returns.
            seen = await committed_offsets(consumer, tp_in, 10.0, until=lambda o: o == 2)
            assert seen[-1] == 2, seen
            assert set(seen) <= {None, 2}, seen

            # The second two are transformed, then the transaction is aborted: neither the
            # output nor the offsets may become visible.
            await producer.begin_transaction()
            for r in second:
                await producer.send_and_wait(sink, r.value.replace(b"in", b"out"))
            await producer.send_offsets_to_transaction({tp_in: second[-1].offset + 1}, group)
            await producer.abort_transaction()
            seen = await committed_offsets(consumer, tp_in, 1.5)
            assert set(seen) == {2}, seen
        finally:
            await consumer.stop()
            await producer.stop()

        reader = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await reader.start()
        try:
            reader.assign([TopicPartition(sink, 0)])
            out = await read_until(reader, lambda r: len(r) >= 2)
            out += await read_until(reader, lambda r: True)
            # Let the fetcher look past the aborted batch and its marker once more.
            await asyncio.sleep(1)
            out += await read_until(reader, lambda r: True)
        finally:
            await reader.stop()
        assert [r.value for r in out] == [b"out-0", b"out-1"]

        # By now the abort markers are surely written: the group's offset is still 2.
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        assert offsets[tp_in].offset == 2

        await delete_topic(kafka_bootstrap, source)
        await delete_topic(kafka_bootstrap, sink)

    run(scenario)

"""`influence topics create` on one broker and on a cluster: replicas min(3, brokers) and
`min.insync.replicas` 2 once there are three, asked of the cluster unless set."""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka.admin
import pytest

from pipeline import topics_admin
from pipeline.settings import Settings


class FakeAdmin:
    """The admin client calls `create_topics` makes, answered by a cluster of `brokers`."""

    brokers = 1
    created: ClassVar[list[Any]] = []

    def __init__(self, **options: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return []

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": n} for n in range(self.brokers)]}

    async def create_topics(self, topics: list[Any]) -> None:
        FakeAdmin.created = topics


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", FakeAdmin)
    FakeAdmin.created = []
    return FakeAdmin


@pytest.mark.parametrize(
    ("brokers", "explicit", "replicas", "insync"),
    [(1, 0, 1, "1"), (2, 0, 2, "1"), (3, 0, 3, "2"), (5, 0, 3, "2"), (3, 2, 2, "1")],
)
def test_replicas_follow_the_cluster_unless_set(
    admin: type[FakeAdmin], brokers: int, explicit: int, replicas: int, insync: str
) -> None:
    admin.brokers = brokers
    settings = Settings(replication=explicit)
    created = topics_admin.run_create_topics(settings)
    assert created == topics_admin.topic_names(settings)
    assert {t.replication_factor for t in admin.created} == {replicas}
    assert {t.topic_configs["min.insync.replicas"] for t in admin.created} == {insync}
    inputs = [t for t in admin.created if t.name in settings.topics.inputs]
    assert len(inputs) == 3 and all("retention.ms" in t.topic_configs for t in inputs)


def test_a_worker_starts_with_the_replication_decided(admin: type[FakeAdmin]) -> None:
    admin.brokers = 3
    assert topics_admin.with_replication(Settings()).replication == 3
    assert topics_admin.with_replication(Settings(replication=1)).replication == 1


def test_a_negative_replication_is_refused() -> None:
    with pytest.raises(ValueError, match="replication"):
        Settings.from_env({"INFLUENCE_REPLICATION": "-1"})

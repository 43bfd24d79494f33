"""The Faust application: topics, the users table and the three agents, feeding the topology.

- `act` reads the input topics (keyed by actor) and the forward topic: actor steps;
- `receive` reads the repartition topic (keyed by target): target steps;
- `control` reads `forget` requests (keyed by user).

All topics have the same partition count and the default (murmur2) key partitioner, so
partition p of every topic, and of the users table's changelog, lives on the same worker: a
user's whole state is local to one partition.

The processing itself is plain synchronous code (`pipeline.topology`, `pipeline.ordering`,
`pipeline.processing`), which the in-process driver (`pipeline.driver`) runs too. This module
only feeds it Faust's batches and carries out its steps: a `Batch` runs under one lock per
worker (the handlers, then its outbox sent, one producer flush, each changed user's changelog
record sent, another flush, then each changed user written to the table's store once); an
`Ack` acknowledges on the agent's stream. Per-event changelog writes were what held an
untuned Faust app to a few hundred events per second; and since a user's record is written
only after the outputs it implies are acknowledged, a crash can lose a state write (the
events are redelivered and re-applied) but never an engagement or a score event that the
state claims was sent.
Every private Faust name is reached through `pipeline.faust_compat` (and `pipeline.consumer`).
"""

from __future__ import annotations

from typing import Any

import faust

from pipeline.api import register as register_views
from pipeline.faust_app import install_agents
from pipeline.faust_compat import install_transport
from pipeline.faust_runner import Pipeline
from pipeline.settings import Settings
from scoring import Model

__all__ = ["Pipeline", "create_app"]


def create_app(settings: Settings, model: Model) -> faust.App:
    """The worker's Faust app, built from settings (nothing happens at import time)."""
    brokers = [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")]
    app = faust.App(
        settings.app_id,
        broker=brokers,
        store=settings.store,
        datadir=settings.app_data_dir,
        processing_guarantee=settings.processing_guarantee,
        web_bind=settings.web_host,
        web_host=settings.web_advertised_host or settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_credentials=_credentials(settings),
        producer_acks=-1,
        # Faust would wait, at every rebalance and stop, for every message it delivered to be
        # acknowledged: the inputs and engagements held for event-time order never are, so
        # a worker with a backlog hung for minutes on SIGTERM and its group rebalanced over
        # and over. Held messages are dropped instead (redelivered to the next owner); a batch
        # in flight finishes under the batch lock (`Pipeline.revoked`).
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    install_transport(app)  # AtLeastOnceConsumer, SourcePartitionTransactions
    pipeline = Pipeline(app, settings, model)
    app.influence = pipeline  # type: ignore[attr-defined]
    register_views(app, pipeline, pipeline.metrics, settings.api_token)
    install_agents(app, pipeline, settings)
    return app


def _credentials(settings: Settings) -> Any:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username or "",
            password=settings.sasl_password or "",
            mechanism=settings.sasl_mechanism,
            ssl_context=None,
        )
    if settings.ssl_cafile:
        import ssl

        return ssl.create_default_context(cafile=settings.ssl_cafile)
    return None

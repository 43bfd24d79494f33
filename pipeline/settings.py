"""One frozen settings object for the Kafka pipeline, read from the environment.

Every knob an operator sets lives here, with its environment variable, so a deployment is
described by its environment alone (12-factor). Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.codec import MAX_EVENT_BYTES
from scoring.events import SOURCE_FOR_KIND

PREFIX = "INFLUENCE_"
_APP_ID = re.compile(r"[A-Za-z0-9._-]+")
"""What an app id may hold: it names Kafka topics (`<id>-users-changelog`) and a directory."""


CORE_ENV = PREFIX + "CORE"
"""Chooses the scoring core (`Settings.core`) of workers and replays alike."""
CORES = ("auto", "native", "python")


def core_from_env(env: Mapping[str, str] | None = None) -> str:
    """`Settings.core` as the environment sets it, for a process that needs no other setting
    (`influence replay`): the same variable, default and check as `Settings.from_env`."""
    core = (os.environ if env is None else env).get(CORE_ENV, "auto")
    if core not in CORES:
        raise ValueError(f"{CORE_ENV} must be one of {', '.join(CORES)}, not {core!r}")
    return core


def _check_app_id(app_id: str) -> None:
    if not _APP_ID.fullmatch(app_id) or app_id in (".", ".."):
        raise ValueError(
            f"app id {app_id!r} must be letters, digits, '.', '_' or '-' (it names Kafka "
            "topics and a directory)"
        )


@dataclass(frozen=True, slots=True)
class Topics:
    """Kafka topic names (INTERFACES.md defaults)."""

    tweets: str = "tweets"
    retweets: str = "retweets"
    mentions: str = "mentions"
    control: str = "influence-control"
    engagements: str = "influence-engagements"
    """Repartition topic: engagements keyed by target."""
    forwarded: str = "influence-inputs-forwarded"
    """Internal: inputs read outside their actor's partition, sent on there (pipeline/forward)."""
    score_changes: str = "score-changes"
    dead_letter: str = "influence-dead-letter"

    @property
    def inputs(self) -> tuple[str, str, str]:
        """The input topics in the order of `scoring.events.SOURCES`: a topic's index here is
        the source its actions are counted in (§12)."""
        return (self.tweets, self.retweets, self.mentions)

    def for_kind(self, kind: str) -> str:
        """The input topic an event of `kind` travels on (INTERFACES.md), by scoring's own
        table (`SOURCE_FOR_KIND`), so producers and the model cannot disagree."""
        return self.inputs[SOURCE_FOR_KIND[kind]]


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of a worker; `from_env` reads ``INFLUENCE_<NAME>`` for each field."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """From KAFKA_BOOTSTRAP_SERVERS (or INFLUENCE_BOOTSTRAP_SERVERS)."""
    app_id: str = "influence"
    """Consumer group and state namespace; a shadow model runs under another id."""
    partitions: int = 4
    """Partitions of every co-partitioned topic (inputs, control, repartition, changelog)."""
    replication: int = 0
    """Replicas of every topic the pipeline creates (its own, the changelog, Faust's); 0: min(3,
    the cluster's brokers), asked of the cluster at start (`pipeline.topics_admin`)."""
    processing_guarantee: str = "at_least_once"
    """at_least_once (counters exact by the per-source offset guard) or exactly_once (Kafka
    transactions; see docs/pipeline.md for the faust-streaming stall seen after a kill -9)."""
    store: str = "rocksdb://"
    """Table store: rocksdb:// for workers, memory:// for tests."""
    data_dir: str = "./influence-data"
    """Holds one directory per app id (`app_data_dir`); never shared by two running workers of
    one app id (the worker locks its directory at start)."""
    web_host: str = "127.0.0.1"
    """Address the worker's web server binds (0.0.0.0 in containers)."""
    web_advertised_host: str | None = None
    """Host other workers use to reach this one (query forwarding); web_host when unset. In
    Kubernetes: the pod's stable DNS name, e.g. ``$(POD_NAME).influence-worker``."""
    web_port: int = 6066
    model_path: str | None = None
    """Model file or bundled version name (v1, v2); the bundled default (v2) when unset."""
    security_protocol: str = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    session_timeout_s: float = 6.0
    """Short session/rebalance timeouts: a worker joins in seconds, not a minute."""
    heartbeat_interval_s: float = 1.0
    max_event_bytes: int = MAX_EVENT_BYTES
    """An input message larger than this is dead-lettered (`oversize`) before it is decoded;
    the decoder refuses anything above `MAX_EVENT_BYTES` whatever this says."""
    max_ahead_s: float = 86_400.0
    """An input whose event time is further ahead of the worker's clock is dead-lettered
    (`ts_in_future`): one event from year 3000 would move its partition's event-time clock
    centuries ahead and decay every score there. History (any past time) is always accepted."""
    api_token: str | None = field(default=None, repr=False)
    """Bearer token the query API requires (GET /users, /top); unset: no authentication.
    /metrics, /livez and /readyz never need it."""
    input_retention_ms: int = -1
    """retention.ms of the input topics `influence topics create` makes. Records carry their
    event time as timestamp, so a time limit deletes a historical backfill within minutes of
    producing it; -1 keeps the inputs, the history that replays and reprocessing start from."""
    shadow: bool = False
    """A shadow worker: own state namespace, outputs to `<topic>.shadow.<version>` topics
    (pipeline/reprocess.py); set by `influence worker --shadow`."""
    start_from_ms: int | None = None
    """Event time a fresh consumer group starts the input topics from (offsets for times);
    partitions with a committed offset resume there instead. `influence worker --from`."""
    batch_max_events: int = 1000
    """Events an agent takes at once; each changed user is written once per batch."""
    batch_within_s: float = 0.05
    """How long an agent waits to fill a batch: the latency a quiet stream pays."""
    cache_max_users: int = 100_000
    """Decoded users kept per partition between batches (beyond it, decoded again on use)."""
    align_max_wait_s: float = 30.0
    """How long input partitions with events wait for one that is behind in event time and
    still has events on the broker (pipeline/aligner.py); then it stops holding them back.
    As long as `merge_max_wait_s`: such a partition has not gone quiet, its fetch is late
    (a loaded machine, a blocked loop, a slow broker), and giving up applies its events
    after later ones. At 1 s, a partition starved for a few seconds put one actor's retweet
    of day 4 after its forwarded one of day 9 and scored their target 0.1 off."""
    release_interval_s: float = 0.5
    """How often a worker's timers release held inputs and engagements whose wait ended,
    and announce the progress of partitions found idle without an input."""
    merge_max_wait_s: float = 30.0
    """How long a held engagement waits for sources that say nothing before they stop holding
    it back (pipeline/merge.py): longer than a failover takes (session timeout, recovery), so
    a dead worker's partitions are waited for, and short enough that a lost announcement
    delays a partition by half a minute, not for good."""
    end_offsets_timeout_s: float = 2.0
    """How long a worker waits for the end offsets that confirm a forwarder's idle claim
    (pipeline/end_offsets.py); on a timeout the claim keeps holding until the next check."""
    held_report_interval_s: float = 10.0
    """How often a worker logs the sources that keep engagements waiting (pipeline/merge.py)."""
    core: str = "auto"
    """The scoring core of the worker's actor and target steps, and of `influence replay`
    (INFLUENCE_CORE): native (the compiled `scoring._native`; an error if it is not built),
    python (the specification) or auto (native when built, else python)."""
    engagements_per_message: int = 500
    """Engagements bundled into one repartition message (one Kafka record, many engagements)."""
    topics: Topics = field(default_factory=Topics)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``INFLUENCE_*`` variables (topic names: ``INFLUENCE_TOPIC_<NAME>``)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "topics":
                continue
            raw = env.get(PREFIX + f.name.upper())
            if f.name == "bootstrap_servers":
                raw = env.get("KAFKA_BOOTSTRAP_SERVERS", raw)
            if raw is None:
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif default is None and f.type == "int | None":
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        topic_names = {
            t.name: env[PREFIX + "TOPIC_" + t.name.upper()]
            for t in fields(Topics)
            if PREFIX + "TOPIC_" + t.name.upper() in env
        }
        settings = cls(**values, topics=Topics(**topic_names))
        settings = replace(settings, **overrides) if overrides else settings
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.processing_guarantee not in ("exactly_once", "at_least_once"):
            raise ValueError("processing_guarantee must be exactly_once or at_least_once")
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if self.core not in CORES:
            raise ValueError(f"{CORE_ENV} must be one of {', '.join(CORES)}, not {self.core!r}")
        if self.replication < 0:
            raise ValueError("replication must be 0 (as the cluster allows) or more")
        _check_app_id(self.app_id)

    @property
    def app_data_dir(self) -> str:
        """This app id's own directory under `data_dir`: Faust's datadir, so its RocksDB tables
        live in ``<data_dir>/<app_id>/v1/tables/users-<partition>.db``. Two app ids (a shadow
        worker, a reprocessing deployment) in one data dir never share a store."""
        _check_app_id(self.app_id)
        return os.path.join(self.data_dir, self.app_id)

    def kafka_client_options(self) -> dict[str, Any]:
        """Connection options for aiokafka clients (admin, producers, consumers)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return options
